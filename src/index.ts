export * from './batch/index.js';
export * from './http/index.js';
export * from './retry/index.js';
