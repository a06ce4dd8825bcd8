/**
 * What deployment files may ask of the `model-rollout` binary, decided by the code itself: an argument list is
 * parsed by the CLI's own commander program (its actions replaced, so nothing runs), and an environment
 * variable counts as read only when the code reads it (literally, or as a provider's key, an eval service's
 * URL or a Temporal connection setting, asked of the code that resolves those).
 */
import fs from 'node:fs';
import path from 'node:path';
import { CommanderError, type Command } from 'commander';
import ts from 'typescript';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { buildProgram } from '../../src/cli/main';
import { DEFAULT_PROVIDERS, envPrefix } from '../../src/data-plane/providers/registry';
import { httpServicesFromEnv } from '../../src/decision/scoring/evaluators';
import { ROOT } from './cli-process';

export interface ParsedArgs {
  /** The (sub)command that would run, e.g. ['temporal'] or ['routes', 'set']. */
  command: string[];
  options: Record<string, unknown>;
}

/** Parses `args` (what follows `model-rollout`) as the CLI would; throws the CLI's own error for a bad one. */
export async function parseCliArgs(args: string[]): Promise<ParsedArgs> {
  const program = buildProgram();
  let ran: ParsedArgs | undefined;
  const errors: string[] = [];
  const silence = (command: Command) => {
    command.configureOutput({ writeOut: () => {}, writeErr: (text) => errors.push(text.trim()) });
    for (const sub of command.commands) {
      silence(sub);
      if (sub.commands.length === 0)
        sub.action(() => {
          const names: string[] = [];
          for (let c: Command | null = sub; c && c !== program; c = c.parent) names.unshift(c.name());
          ran = { command: names, options: sub.opts() };
        });
    }
  };
  silence(program);
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) throw new Error(`model-rollout ${args.join(' ')}: ${err.message}`);
    throw err;
  }
  if (!ran) throw new Error(`model-rollout ${args.join(' ')}: runs no command (${errors.join('; ')})`);
  return ran;
}

const SOURCE_DIRS = ['src', 'activities', 'bin'];

/**
 * Names the code could read from the environment: `<anything>env.NAME`, `env['NAME']`, and string literals
 * that are exactly an upper-case name (`durationFromEnv('MODEL_ROLLOUT_EVENT_RETENTION', ...)`). Comments
 * do not count: the TypeScript parser skips them.
 */
function namesInCode(): Set<string> {
  const names = new Set<string>();
  const visit = (node: ts.Node) => {
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) {
      if (/^[A-Z][A-Z0-9_]+$/.test(node.text)) names.add(node.text);
    } else if (ts.isPropertyAccessExpression(node) && /\benv$/.test(node.expression.getText())) {
      names.add(node.name.text);
    }
    ts.forEachChild(node, visit);
  };
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (/\.(ts|js)$/.test(entry.name))
        visit(ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true));
    }
  };
  for (const dir of SOURCE_DIRS) walk(path.join(ROOT, dir));
  return names;
}

let named: Set<string> | undefined;

/**
 * Which code reads the environment variable `name` (undefined: none). `value` is what the deployment sets,
 * for the readers that are asked rather than searched.
 */
export function readerOf(name: string, value = 'x'): string | undefined {
  named ??= namesInCode();
  if (named.has(name)) return 'read by name in the code';
  for (const [provider, config] of Object.entries(DEFAULT_PROVIDERS)) {
    if (config.apiKeyEnv === name) return `API key of provider ${provider}`;
    for (const suffix of ['_BASE_URL', '_ALLOWED_BASE_URLS', '_API_KEY_ENV'])
      if (`${envPrefix(provider)}${suffix}` === name)
        return `${suffix.slice(1).toLowerCase()} of provider ${provider}`;
  }
  if (Object.keys(httpServicesFromEnv({ [name]: 'http://evals.example' })).length > 0)
    return 'an HTTP eval service (MODEL_ROLLOUT_EVALUATOR_<NAME>_URL)';
  if (name.startsWith('TEMPORAL_')) {
    const plain = JSON.stringify(loadClientConnectConfig({ overrideEnvVars: {} }));
    const withIt = JSON.stringify(loadClientConnectConfig({ overrideEnvVars: { [name]: value } }));
    if (withIt !== plain) return 'Temporal connection settings (@temporalio/envconfig)';
  }
  return undefined;
}
