/** The checker of the docs' shown output (test/support/doc-blocks.ts) fails when it should. */
import { describe, expect, it } from 'vitest';
import { docBlocks, lineMatches, outputMismatch, shownOutput } from './support/doc-blocks.js';

describe('shown output of doc blocks', () => {
  it('reads // → lines after a statement or on their own', () => {
    const code = [
      'console.log(res.status, res.attempts); // → 200 3',
      'console.log(outcomes);',
      '// → MaxRetryError …',
      '// → ',
      '// 200, a comment that shows nothing',
    ].join('\n');
    expect(shownOutput(code)).toEqual(['200 3', 'MaxRetryError …', '']);
  });

  it('reads the info string: no-run and needs=', () => {
    const md = '# A\n```ts no-run\nx();\n```\n## B\n```ts needs=redis,postgres\ny(); // → 1\n```\n';
    const [a, b] = docBlocks('x.md', md);
    expect(a).toMatchObject({ index: 1, heading: 'A', run: false, needs: [], shows: [] });
    expect(b).toMatchObject({
      index: 2,
      heading: 'B',
      run: true,
      needs: ['redis', 'postgres'],
      shows: ['1'],
    });
  });

  it('refuses a service it does not know in needs=', () => {
    expect(() => docBlocks('x.md', '```ts needs=redis,postgress\nx();\n```\n')).toThrow(
      'x.md: block 1 needs an unknown service postgress',
    );
  });

  it('matches whole lines, … standing for any text', () => {
    expect(lineMatches('200 3', '200 3')).toBe(true);
    expect(lineMatches('200 3', '200 3  ')).toBe(true);
    expect(lineMatches('200 3', '200 30')).toBe(false);
    expect(lineMatches('200 3', 'x 200 3')).toBe(false);
    expect(lineMatches('took … ms (x)', 'took 12.5 ms (x)')).toBe(true);
    expect(lineMatches('took … ms (x)', 'took 12.5 s (x)')).toBe(false);
    expect(lineMatches('a.b*c', 'a.b*c')).toBe(true);
    expect(lineMatches('a.b*c', 'aXbbc')).toBe(false);
  });

  it('passes when the shown lines are printed in order, other lines between them', () => {
    expect(outputMismatch(['one', 'three'], ['one', 'two', 'three'])).toBeUndefined();
    expect(outputMismatch([], ['anything'])).toBeUndefined();
  });

  it('fails on a wrong sample: the storm block as it used to be shown', () => {
    const printed = [
      'BudgetExhaustedError BudgetExhaustedError BudgetExhaustedError BudgetExhaustedError BudgetExhaustedError BudgetExhaustedError BudgetExhaustedError BudgetExhaustedError BudgetExhaustedError CircuitOpenError CircuitOpenError CircuitOpenError',
      '18 requests reached the server for 12 logical requests',
    ];
    const wrong = [
      'MaxRetryError BudgetExhaustedError BudgetExhaustedError BudgetExhaustedError BudgetExhaustedError CircuitOpenError …',
      '10 requests reached the server for 12 logical requests',
    ];
    const message = outputMismatch(wrong, printed);
    expect(message).toContain('shown output line 1 was not printed');
    expect(message).toContain('18 requests reached the server');
  });

  it('fails when the lines are printed in another order, or a shown line is missing', () => {
    expect(outputMismatch(['b', 'a'], ['a', 'b'])).toContain('line 2 was not printed after');
    expect(
      outputMismatch(['threw NetworkError: …'], ['threw Error: connection dropped']),
    ).toContain('shown:   threw NetworkError: …');
    expect(outputMismatch(['x'], [])).toContain('(nothing)');
  });
});
