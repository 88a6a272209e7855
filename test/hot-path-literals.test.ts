import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * Node 20's V8 builds an object literal that spreads another object and then adds fields
 * (`{ ...target, method, headers }`) on a slow path: 1–4 µs, where naming the fields or
 * `Object.assign` takes 0.05. Once per input line it cost the batch runner more than parsing the
 * line. The modules every request, every input line or every outcome goes through must not
 * build one; a spread of a condition that yields a fresh literal or nothing
 * (`...(x && { x })`) is not one: V8 takes its fast path. Left out: modules whose spreads run once
 * per origin or Session, or for a request that brings its own retry or timeout options
 * (`storm.ts`, `policy.ts`, `timeouts.ts`).
 */
const HOT_MODULES = [
  'src/http/session.ts',
  'src/http/exchange.ts',
  'src/http/exchange-base.ts',
  'src/http/attempt-deadline.ts',
  'src/http/connect-abort.ts',
  'src/http/response.ts',
  'src/http/body.ts',
  'src/http/body-limit.ts',
  'src/http/http2.ts',
  'src/http/cookies.ts',
  'src/http/decompress.ts',
  'src/http/observe.ts',
  'src/http/hooks.ts',
  'src/batch/input-line.ts',
  'src/batch/input.ts',
  'src/batch/ingest.ts',
  'src/batch/run.ts',
  'src/batch/attempt.ts',
  'src/batch/decide.ts',
  'src/batch/outcome.ts',
  'src/batch/scheduler.ts',
  'src/batch/host-limits.ts',
  'src/batch/journal.ts',
  'src/batch/header-fields.ts',
  'src/batch/distributed/processor.ts',
  'src/batch/distributed/store-chunks.ts',
  'src/batch/distributed/result-writer.ts',
  'src/batch/distributed/line-slots.ts',
  'src/batch/distributed/fleet-gate.ts',
  'src/batch/distributed/host-slots.ts',
];

const root = fileURLToPath(new URL('..', import.meta.url));

/**
 * Whether a spread's value is always a fresh literal or nothing: `{ ... }`, `a && { ... }`,
 * `c ? { ... } : undefined` (V8's fast path), not an object made elsewhere.
 */
function spreadsAFreshLiteral(expression: ts.Expression): boolean {
  let e = expression;
  while (ts.isParenthesizedExpression(e)) e = e.expression;
  if (ts.isObjectLiteralExpression(e)) return true;
  if (
    e.kind === ts.SyntaxKind.NullKeyword ||
    e.kind === ts.SyntaxKind.FalseKeyword ||
    (ts.isIdentifier(e) && e.text === 'undefined')
  )
    return true;
  if (ts.isConditionalExpression(e))
    return spreadsAFreshLiteral(e.whenTrue) && spreadsAFreshLiteral(e.whenFalse);
  return (
    ts.isBinaryExpression(e) &&
    e.operatorToken.kind === ts.SyntaxKind.AmpersandAmpersandToken &&
    spreadsAFreshLiteral(e.right)
  );
}

/** `file:line: text` of each object literal of `source` that spreads an object, then adds to it. */
function slowSpreads(file: string, source: string): string[] {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isObjectLiteralExpression(node)) {
      const members = node.properties;
      const at = members.findIndex(
        (m) => ts.isSpreadAssignment(m) && !spreadsAFreshLiteral(m.expression),
      );
      if (at >= 0 && at < members.length - 1) {
        const line = sf.getLineAndCharacterOfPosition(node.getStart()).line + 1;
        found.push(`${file}:${line}: ${node.getText().replace(/\s+/g, ' ').slice(0, 80)}`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

describe('hot-path object literals', () => {
  it('finds the slow form, and only it', () => {
    const source = `
      const a = { ...target, method: 'GET' };
      const b = { ...x, ...y };
      const c = { method: 'GET', ...target };
      const d = { ...(flag && { x: 1 }), method: 'GET' };
      const e = { ...target };
      const f = Object.assign({}, target, { method: 'GET' });
      const g = { ...(flag ? x : y), z: 1 };
      const h = { ...(flag ? { x: 1 } : undefined), z: 1 };
      const i = { ...(o.budget ?? {}), z: 1 };
    `;
    expect(slowSpreads('t.ts', source).map((s) => s.split(': ')[0])).toEqual([
      't.ts:2',
      't.ts:3',
      't.ts:8',
      't.ts:10',
    ]);
  });

  it.each(HOT_MODULES)('%s spreads no object before other fields', (file) => {
    expect(slowSpreads(file, readFileSync(`${root}${file}`, 'utf8'))).toEqual([]);
  });
});
