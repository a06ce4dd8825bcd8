import type { Pricing } from '../../data-plane/providers/pricing';
import { formatTarget } from '../config/target';
import type { Target } from '../../data-plane/providers/types';

/**
 * A judge budget (`evaluation.budgetUsd`) binds only through what judge calls cost, and a call to a model
 * without a price costs 0: such a budget would never stop anything while the status shows it as a limit.
 * Refused at `start` (and by the worker, for a spec sent by any other Temporal client), naming the field.
 */
export interface BudgetedEvaluation {
  budgetUsd?: number;
  judge?: Target;
  evaluators?: ReadonlyArray<{ kind: string; target?: Target }>;
}

export function judgeBudgetIssues(
  evaluation: BudgetedEvaluation | undefined,
  pricing: Pick<Pricing, 'priceOf'>,
): Array<{ field: string; reason: string }> {
  if (evaluation?.budgetUsd === undefined) return [];
  const judges: Array<[string, Target]> = evaluation.evaluators?.length
    ? evaluation.evaluators.flatMap((e, i): Array<[string, Target]> =>
        e.kind === 'judge' && e.target ? [[`evaluation.evaluators.${i}.target`, e.target]] : [],
      )
    : evaluation.judge
      ? [['evaluation.judge', evaluation.judge]]
      : [];
  if (judges.length === 0)
    return [
      {
        field: 'evaluation.budgetUsd',
        reason:
          'no judge to spend it: the budget counts only judge calls, so it would never bind (add a judge, or drop the budget)',
      },
    ];
  return judges
    .filter(([, target]) => !pricing.priceOf(target.model))
    .map(([field, target]) => ({
      field: 'evaluation.budgetUsd',
      reason:
        `the judge ${formatTarget(target)} (${field}) has no price, so its calls cost 0 and the budget would ` +
        'never bind: judge with a model the price table knows (src/data-plane/providers/pricing.ts, or ' +
        "the worker's createProviderRegistry({ pricing })), or drop the budget",
    }));
}
