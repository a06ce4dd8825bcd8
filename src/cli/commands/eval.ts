/**
 * `model-rollout eval`: the team's dataset against a candidate and the current stable model before any user
 * sees the candidate, through the same providers and checks as live traffic. Prints a table and the
 * comparison, writes JUnit XML for CI (`--junit`), and exits 1 when the candidate may be worse than stable by
 * more than `--margin`.
 */
import fs from 'node:fs';
import type { Command } from 'commander';
import { UsageError } from '../errors';
import { green, red, table } from '../format';

interface EvalOptions {
  dataset: string;
  candidate: string;
  stable: string;
  fallback?: string[];
  judge?: string;
  margin: string;
  confidence: string;
  concurrency: string;
  timeout: string;
  junit?: string;
  json?: boolean;
  simulator?: string;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

function numberIn(value: string, flag: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max)
    throw new UsageError(`${flag}: expected a number from ${min} to ${max}, got "${value}"`);
  return n;
}

export function registerEvalCommand(program: Command): void {
  program
    .command('eval')
    .description(
      'Run an eval dataset (JSONL) against a candidate and the stable model; exit 1 when the candidate is worse',
    )
    .requiredOption(
      '--dataset <file>',
      'JSONL: one {prompt|messages, reference?, assert?} per line (see docs/eval.md)',
    )
    .requiredOption('--candidate <provider:model>', 'the model to evaluate')
    .requiredOption('--stable <provider:model>', 'the model it would replace')
    .option('--fallback <provider:model>', "the candidate's fallback (repeatable)", collect)
    .option('--judge <provider:model>', 'LLM judge for `judge` assertions')
    .option('--margin <fraction>', 'how much lower a pass rate may be (0.05 = 5 points)', '0.05')
    .option(
      '--confidence <level>',
      'one-sided confidence of the comparison: 0.8, 0.9, 0.95, 0.975, 0.99',
      '0.95',
    )
    .option('--concurrency <n>', 'calls in flight at most', '8')
    .option('--timeout <duration>', 'per call', '60s')
    .option('--junit <file>', 'write a JUnit XML report (a case per item and arm, and the comparison)')
    .option('--json', 'print the results and the comparison as JSON')
    .option('--simulator <url>', 'send every provider to the simulator at this URL (no real keys used)')
    .addHelpText(
      'after',
      '\nExample:\n  model-rollout eval --dataset examples/eval-support-bot.jsonl --candidate openai:gpt-4o --stable anthropic:claude-sonnet-4 --junit eval.xml',
    )
    .action(async (opts: EvalOptions) => {
      const { parseDataset } = await import('../../decision/eval/dataset');
      const { parseTarget } = await import('../../decision/config/target');
      const { parseDuration } = await import('../../decision/config/duration');
      const margin = numberIn(opts.margin, '--margin', 0, 1);
      const confidence = numberIn(opts.confidence, '--confidence', 0, 1);
      const concurrency = numberIn(opts.concurrency, '--concurrency', 1, 256);
      let timeoutMs: number;
      let candidate, stable, fallbacks, judge;
      try {
        timeoutMs = parseDuration(opts.timeout);
        candidate = parseTarget(opts.candidate, '--candidate');
        stable = parseTarget(opts.stable, '--stable');
        fallbacks = (opts.fallback ?? []).map((f) => parseTarget(f, '--fallback'));
        judge = opts.judge ? parseTarget(opts.judge, '--judge') : undefined;
      } catch (err) {
        // A flag holds one target: the schema's "(root)" field says nothing more than the flag's name.
        throw new UsageError((err as Error).message.replace(': (root): ', ': '));
      }
      let text: string;
      try {
        text = fs.readFileSync(opts.dataset, 'utf8');
      } catch (err) {
        throw new UsageError(
          `--dataset: cannot read ${opts.dataset}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        );
      }
      const items = (() => {
        try {
          return parseDataset(text, opts.dataset);
        } catch (err) {
          throw new UsageError((err as Error).message);
        }
      })();
      const { zFor, compareArms } = await import('../../decision/eval/compare');
      try {
        zFor(confidence);
      } catch (err) {
        throw new UsageError(`--confidence: ${(err as Error).message}`);
      }

      const { simulatorRegistry, createFallbackChain } = await import('../../data-plane/providers');
      const { deploymentRegistry } = await import('../../data-plane/providers/providers-file');
      const registry = opts.simulator ? simulatorRegistry(opts.simulator) : deploymentRegistry();
      const chain = createFallbackChain({ registry, retry: { maxRetries: 2 } });
      const { runEval } = await import('../../control-plane/eval/runner');
      const total = items.length * 2;
      let finished = 0;
      const started = Date.now();
      try {
        const results = await runEval({
          chain,
          items,
          arms: { candidate: [candidate, ...fallbacks], stable: [stable] },
          judge,
          concurrency,
          timeoutMs,
          onResult: () => {
            finished += 1;
            // Progress on stderr, so stdout stays the report (and --json stays parseable).
            if (finished % 10 === 0 || finished === total)
              console.error(
                `eval: ${finished}/${total} answers checked (${((Date.now() - started) / 1000).toFixed(1)} s)`,
              );
          },
        });
        const outcomes = items.map((item) => ({
          candidate: results.find((r) => r.item === item.id && r.arm === 'candidate')!.pass,
          stable: results.find((r) => r.item === item.id && r.arm === 'stable')!.pass,
        }));
        const comparison = compareArms(outcomes, { margin, confidence });
        if (opts.junit) {
          const { junitReport } = await import('../../decision/eval/junit');
          fs.writeFileSync(opts.junit, junitReport('model-rollout eval', results, comparison));
        }
        if (opts.json) {
          console.log(JSON.stringify({ comparison, results }, null, 2));
        } else {
          const mark = (pass: boolean) => (pass ? green('pass') : red('FAIL'));
          const rows = items.map((item) => {
            const c = results.find((r) => r.item === item.id && r.arm === 'candidate')!;
            const s = results.find((r) => r.item === item.id && r.arm === 'stable')!;
            return [item.id, mark(c.pass), mark(s.pass), c.failures.join('; ')];
          });
          console.log(table(rows, ['item', opts.candidate, opts.stable, 'candidate failures']));
          console.log();
          console.log(`${comparison.pass ? green('PASS') : red('FAIL')}  ${comparison.summary}`);
          if (opts.junit) console.log(`JUnit report: ${opts.junit}`);
        }
        if (!comparison.pass)
          throw new Error(
            `eval gate failed: ${opts.candidate} may be worse than ${opts.stable} by more than ${margin * 100}%`,
          );
      } finally {
        await chain.close();
      }
    });
}
