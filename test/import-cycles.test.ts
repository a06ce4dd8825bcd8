/**
 * No import circles in src/, workflows/ or activities/ (issue 20): a circle makes load order matter (a
 * module sees another half-initialised), keeps modules from being read or tested alone, and for workflow
 * code pulls whatever the circle holds into the workflow bundle.
 *
 * The graph is walked with the TypeScript compiler API (already a dependency): `preProcessFile` lists every
 * import and re-export of a file, type-only ones included (a type-only circle is still a circle in the
 * design, and the next value import closes it for real), and `resolveModuleName` resolves them exactly as
 * `tsc` does with the project's tsconfig. madge would add some forty packages and skips `import type` by
 * default.
 */
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..');

function importGraph(dirs: string[]): Map<string, string[]> {
  const config = ts.getParsedCommandLineOfConfigFile(path.join(root, 'tsconfig.json'), undefined, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    },
  });
  if (!config) throw new Error('tsconfig.json could not be read');
  const inScope = (file: string) => dirs.some((d) => file.startsWith(path.join(root, d) + path.sep));
  const files = config.fileNames.filter(inScope);
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const { importedFiles } = ts.preProcessFile(fs.readFileSync(file, 'utf8'), true, true);
    const deps: string[] = [];
    for (const imported of importedFiles) {
      const resolved = ts.resolveModuleName(imported.fileName, file, config.options, ts.sys).resolvedModule;
      if (resolved && !resolved.isExternalLibraryImport && inScope(resolved.resolvedFileName))
        deps.push(resolved.resolvedFileName);
    }
    graph.set(file, deps);
  }
  return graph;
}

/** The strongly connected components with more than one module (or a module importing itself): Tarjan. */
function circles(graph: Map<string, string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(path.relative(root, w));
    } while (w !== v);
    if (component.length > 1 || graph.get(v)!.includes(v)) found.push(component.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

describe('import graph', () => {
  it('src/, workflows/ and activities/ have no import circles (type-only imports included)', () => {
    const graph = importGraph(['src', 'workflows', 'activities']);
    // The walk sees the code: the router, its shadow runner and the workflow files are all in it.
    expect(graph.size).toBeGreaterThan(100);
    expect([...graph.keys()].some((f) => f.endsWith('router/shadow.ts'))).toBe(true);
    expect(circles(graph).map((c) => `import circle among ${c.join(', ')}`)).toEqual([]);
  });

  it('finds a circle when there is one', () => {
    const a = path.join(root, 'a.ts');
    const b = path.join(root, 'b.ts');
    expect(
      circles(
        new Map([
          [a, [b]],
          [b, [a]],
        ]),
      ),
    ).toEqual([['a.ts', 'b.ts']]);
  });
});
