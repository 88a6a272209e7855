/** A URL, a response and a network error as RetryPolicy's tests hand them in. */
export const URL_ = 'http://127.0.0.1:8080/x';
export const res = (status: number, headers: Record<string, string> = {}) => ({
  status,
  url: URL_,
  headers: new Headers(headers),
});
export const net = (code: string) => Object.assign(new Error(`boom ${code}`), { code });
