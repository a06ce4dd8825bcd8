/**
 * The value at a JSON path in an HTTP JSON endpoint's answer: `$`, `$.data.value`, `$.items[0].rate`,
 * `$['p95 ms']`. A minimal dotted path on purpose: one value is all a check reads, and the full JSONPath
 * libraries evaluate filter expressions with script engines (jsonpath-plus had a remote code execution
 * through them, CVE-2024-21534), which a worker reading answers from other hosts does not need.
 */
export function readJsonPath(doc: unknown, path: string): unknown {
  const steps = [...path.replace(/^\$/, '').matchAll(/\.([A-Za-z_][\w-]*)|\[(\d+)\]|\['([^']*)'\]/g)];
  const consumed = steps.reduce((n, m) => n + m[0].length, 0);
  if (consumed !== path.replace(/^\$/, '').length) throw new Error(`not a supported JSON path: ${path}`);
  let at: unknown = doc;
  for (const m of steps) {
    if (at === null || typeof at !== 'object') return undefined;
    if (m[2] !== undefined) {
      if (!Array.isArray(at)) return undefined;
      at = at[Number(m[2])];
    } else {
      const key = m[1] ?? m[3];
      if (!Object.prototype.hasOwnProperty.call(at, key)) return undefined;
      at = (at as Record<string, unknown>)[key];
    }
  }
  return at;
}

/** A measured number: a finite JSON number, or a numeric string (Prometheus sends values as strings). */
export function asNumber(value: unknown): number | null {
  const n =
    typeof value === 'number'
      ? value
      : typeof value === 'string' && value.trim() !== ''
        ? Number(value)
        : NaN;
  return Number.isFinite(n) ? n : null;
}
