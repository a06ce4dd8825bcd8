import type { FallbackChain } from '../../data-plane/providers/fallback-chain';
import type { Target } from '../../data-plane/providers/types';
import { judgeScore } from '../../decision/scoring/judge';
import { checkAnswer, type EvalAnswer, type ItemVerdict, type JudgeFn } from '../../decision/eval/assertions';
import { messagesOf, type DatasetItem } from '../../decision/eval/dataset';
import { formatTarget } from '../../decision/config/target';

export type Arm = 'candidate' | 'stable';

export interface ItemResult extends ItemVerdict {
  item: string;
  arm: Arm;
  /** The target that answered (a fallback may have), or the chain's first when none did. */
  target: string;
  seconds: number;
  answer: string;
}

export interface EvalRunOptions {
  chain: FallbackChain;
  items: readonly DatasetItem[];
  /** Each arm's chain: its target first, then its fallbacks, as the route would call them. */
  arms: Record<Arm, readonly Target[]>;
  judge?: Target;
  /** Calls in flight at most (both arms together). */
  concurrency?: number;
  timeoutMs?: number;
  /** Results already known (a resumed run): these items are not asked again. */
  done?: readonly ItemResult[];
  /** Called as each result is known (progress output, storing it for a resume). */
  onResult?: (result: ItemResult) => void | Promise<void>;
}

/**
 * Runs every item against both arms through the same providers and checks as live traffic, a bounded number
 * of calls at a time. A failed call fails its item on that arm (the model could not answer it); the run
 * itself fails only on a problem with the dataset or the judge configuration.
 */
export async function runEval(options: EvalRunOptions): Promise<ItemResult[]> {
  const { chain, items } = options;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const judge: JudgeFn | undefined = options.judge
    ? async (rubric, question, answer) =>
        (await judgeScore(chain, options.judge!, question, answer, { rubric, timeoutMs })).score
    : undefined;
  const key = (item: string, arm: Arm) => `${arm}\u0000${item}`;
  const results = new Map<string, ItemResult>((options.done ?? []).map((r) => [key(r.item, r.arm), r]));
  const tasks: Array<[DatasetItem, Arm]> = [];
  for (const item of items)
    for (const arm of ['candidate', 'stable'] as const)
      if (!results.has(key(item.id, arm))) tasks.push([item, arm]);

  const one = async ([item, arm]: [DatasetItem, Arm]) => {
    const started = performance.now();
    const targets = options.arms[arm];
    let answer: EvalAnswer;
    let target = formatTarget(targets[0]);
    try {
      const r = await chain.complete(targets, messagesOf(item), { timeoutMs });
      target = formatTarget(r.target);
      answer = { text: r.text, toolCalls: r.toolCalls?.map((c) => ({ name: c.function.name })) };
    } catch (err) {
      answer = { text: '', error: (err as Error).message };
    }
    const verdict = await checkAnswer(item, answer, judge);
    const result: ItemResult = {
      ...verdict,
      item: item.id,
      arm,
      target,
      seconds: (performance.now() - started) / 1000,
      answer: answer.text,
    };
    results.set(key(item.id, arm), result);
    await options.onResult?.(result);
  };

  let next = 0;
  const lanes = Array.from(
    { length: Math.max(1, Math.min(options.concurrency ?? 8, tasks.length)) },
    async () => {
      while (next < tasks.length) await one(tasks[next++]);
    },
  );
  await Promise.all(lanes);
  // In dataset order, candidate then stable, whatever order they finished in.
  return items.flatMap((item) =>
    (['candidate', 'stable'] as const).map((arm) => results.get(key(item.id, arm))!),
  );
}
