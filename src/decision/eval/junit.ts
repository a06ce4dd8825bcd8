import type { EvalComparison } from './compare';

/** One test case per item and arm, as CI systems (GitHub, GitLab, Jenkins) show JUnit reports. */
export interface JUnitCase {
  item: string;
  arm: 'candidate' | 'stable';
  target: string;
  pass: boolean;
  failures: string[];
  seconds: number;
}

const escape = (s: string) =>
  s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    // Characters XML 1.0 cannot carry at all (a model's answer may hold them).
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '\ufffd');

/**
 * A JUnit XML report: a suite per arm, a case per item, and a last case `comparison` that fails when the
 * candidate may be worse than stable by more than the margin (so a CI job fails on the gate, not on a
 * single item stable also fails).
 */
export function junitReport(name: string, cases: readonly JUnitCase[], comparison: EvalComparison): string {
  const suites = (['candidate', 'stable'] as const).map((arm) => {
    const mine = cases.filter((c) => c.arm === arm);
    const failed = mine.filter((c) => !c.pass).length;
    const time = mine.reduce((s, c) => s + c.seconds, 0);
    const body = mine
      .map((c) => {
        const head = `    <testcase classname="${escape(`${name}.${arm}`)}" name="${escape(c.item)}" time="${c.seconds.toFixed(3)}">`;
        if (c.pass) return `${head}</testcase>`;
        const message = c.failures.join('; ');
        return `${head}\n      <failure message="${escape(message)}" type="assertion">${escape(`${c.target}: ${message}`)}</failure>\n    </testcase>`;
      })
      .join('\n');
    const target = mine[0]?.target ?? '';
    return `  <testsuite name="${escape(`${name} ${arm} (${target})`)}" tests="${mine.length}" failures="${failed}" errors="0" time="${time.toFixed(3)}">\n${body}\n  </testsuite>`;
  });
  const gate = comparison.pass
    ? `    <testcase classname="${escape(name)}" name="comparison"></testcase>`
    : `    <testcase classname="${escape(name)}" name="comparison">\n      <failure message="${escape(comparison.summary)}" type="gate"></failure>\n    </testcase>`;
  const total = cases.length + 1;
  const failures = cases.filter((c) => !c.pass).length + (comparison.pass ? 0 : 1);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="${escape(name)}" tests="${total}" failures="${failures}">`,
    ...suites,
    `  <testsuite name="${escape(`${name} gate`)}" tests="1" failures="${comparison.pass ? 0 : 1}" errors="0">\n${gate}\n  </testsuite>`,
    '</testsuites>',
    '',
  ].join('\n');
}
