import fs from 'node:fs';
import path from 'node:path';
import { builtinModules } from 'node:module';
import { describe, expect, it } from 'vitest';

/**
 * Workflow code is replayed from history, so everything it imports, transitively, must be deterministic:
 * no Node built-ins and no package that does I/O. This walks the real import graph from workflows/index.ts
 * (type-only imports are erased by the compiler and skipped).
 */
const ROOT = path.resolve(__dirname, '..');
// zod is pure computation (no clock, randomness or I/O): the spec schema is re-checked inside the workflow.
// re2js (the checks evaluator's linear-time regex engine, which the spec schema compiles a pattern with) is
// pure computation too: no imports, no clock, no randomness.
const ALLOWED_PACKAGES = new Set(['@temporalio/workflow', '@temporalio/common', 'zod', 're2js']);
const BUILTINS = new Set(builtinModules);

const IMPORT_RE = /^\s*(?:import|export)\s+(type\s+)?(?:[^'"]*?\s+from\s+)?['"]([^'"]+)['"]/gm;

export function importGraph(entry: string): { files: string[]; violations: string[] } {
  const seen = new Set<string>();
  const violations: string[] = [];
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = fs.readFileSync(file, 'utf8');
    for (const match of source.matchAll(IMPORT_RE)) {
      const [, typeOnly, spec] = match;
      if (typeOnly) continue;
      const where = path.relative(ROOT, file);
      if (spec.startsWith('.')) {
        const base = path.resolve(path.dirname(file), spec);
        const resolved = [`${base}.ts`, path.join(base, 'index.ts'), base].find(
          (f) => fs.existsSync(f) && fs.statSync(f).isFile(),
        );
        if (!resolved) violations.push(`${where}: cannot resolve ${spec}`);
        else visit(resolved);
      } else if (spec.startsWith('node:') || BUILTINS.has(spec.split('/')[0])) {
        violations.push(`${where}: imports Node built-in '${spec}'`);
      } else {
        const pkg = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
        if (!ALLOWED_PACKAGES.has(pkg))
          violations.push(`${where}: imports non-deterministic package '${spec}'`);
      }
    }
  };
  visit(entry);
  return { files: [...seen].map((f) => path.relative(ROOT, f)), violations };
}

describe('workflow determinism', () => {
  it('workflows/ imports no Node built-in and no I/O package, transitively', () => {
    const { files, violations } = importGraph(path.join(ROOT, 'workflows', 'index.ts'));
    expect(files.length).toBeGreaterThan(1);
    expect(violations).toEqual([]);
  });

  it('the check itself catches a forbidden import', () => {
    const dir = fs.mkdtempSync(path.join(ROOT, '.data-determinism-'));
    try {
      fs.writeFileSync(
        path.join(dir, 'index.ts'),
        `import { helper } from './helper';\nexport const x = helper;\n`,
      );
      fs.writeFileSync(
        path.join(dir, 'helper.ts'),
        `import fs from 'node:fs';\nimport pg from 'pg';\nexport const helper = [fs, pg];\n`,
      );
      const { violations } = importGraph(path.join(dir, 'index.ts'));
      expect(violations).toHaveLength(2);
      expect(violations[0]).toMatch(/Node built-in 'node:fs'/);
      expect(violations[1]).toMatch(/non-deterministic package 'pg'/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
