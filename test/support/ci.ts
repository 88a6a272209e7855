/** Whether the CI variable is set (CI=1, CI=true, any value but empty, 0 or false). */
export function ciIsSet(): boolean {
  const value = (process.env.CI ?? '').trim().toLowerCase();
  return value !== '' && value !== '0' && value !== 'false';
}
