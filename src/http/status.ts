import { STATUS_CODES } from 'node:http';

/** `503 Service Unavailable` */
export function describeStatus(status: number, statusText?: string): string {
  const text = statusText || STATUS_CODES[status];
  return text ? `${status} ${text}` : String(status);
}
