export * from './http/index.js';
export * from './retry/index.js';
export * from './batch/index.js';
