import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { transformSync } from 'esbuild';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * The benches and the CLI's development runs execute the TypeScript through tsx, whose esbuild
 * transform keeps function names (`keepNames`): every function made by a closure that JavaScript
 * would name (`const f = () => ...`, `{ f: () => ... }`) is wrapped in a `__name(fn, 'f')` call
 * that redefines the function's `name`, each time the closure is made. On the request path that
 * was 0.23 µs a request (2026-12-06: one arrow assigned to a name in the first attempt's dispatch;
 * `bind` instead costs the same, in V8's `set name`). The compiled package has none of it, but the
 * figures in docs/performance.md come from tsx. Each module a request goes through lists here the
 * functions it names inside other functions, each on a path a request that succeeds at once does
 * not take; any other fails this test.
 */
const ALLOWED: Record<string, string[]> = {
  // Made while waiting for admission (a cooldown, the rate limiter, the breaker).
  'src/http/exchange.ts': ['sleep'],
  'src/http/exchange-base.ts': [],
  // Made per new connection opened for an attempt, not per request.
  'src/http/connect-abort.ts': ['onAbort'],
  // Made only for a request that may go through a proxy.
  'src/http/session.ts': ['poolFor', 'dispatcher'],
  // Made once per parent signal followed, not per attempt.
  'src/http/attempt-deadline.ts': ['listener'],
  // Made when a body is drained (a retried, redirected or unread response).
  'src/http/response.ts': ['finish', 'onData', 'onEnd', 'onError'],
  'src/http/target-cache.ts': [],
  'src/http/plain-url.ts': [],
  'src/http/storm.ts': [],
  'src/http/resume.ts': ['attach'],
  'src/http/cookies.ts': ['at'],
};

const root = fileURLToPath(new URL('..', import.meta.url));

/** The names `__name` gives inside functions (not in a class's static block) of `code`. */
function namedPerCall(code: string): string[] {
  const sf = ts.createSourceFile('t.js', code, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const visit = (node: ts.Node, inFunction: boolean): void => {
    if (ts.isClassStaticBlockDeclaration(node)) return;
    if (
      inFunction &&
      ts.isCallExpression(node) &&
      ts.isIdentifier(node.expression) &&
      node.expression.text === '__name'
    ) {
      const name = node.arguments[1];
      found.push(name && ts.isStringLiteral(name) ? name.text : '?');
    }
    const nested = inFunction || ts.isFunctionLike(node);
    ts.forEachChild(node, (child) => visit(child, nested));
  };
  visit(sf, false);
  return found;
}

function transformed(source: string): string {
  return transformSync(source, { loader: 'ts', keepNames: true, format: 'esm' }).code;
}

describe('functions named per call under keepNames', () => {
  it('finds a named closure inside a function, and not a top-level function or a class', () => {
    const code = transformed(`
      export function f() { const inner = () => 1; return inner; }
      export const top = () => 2;
      export class C { m() { return { g: () => 3 }; } }
      export function h() { return () => 4; }
    `);
    expect(namedPerCall(code).sort()).toEqual(['g', 'inner']);
  });

  it.each(Object.entries(ALLOWED))('%s names only its listed functions', (file, allowed) => {
    const names = namedPerCall(transformed(readFileSync(`${root}${file}`, 'utf8')));
    expect([...new Set(names)].sort()).toEqual([...allowed].sort());
  });
});
