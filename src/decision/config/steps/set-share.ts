/**
 * `{ "setShare": 500 }` or `{ "setShare": "5%" }`: route this share of traffic to the candidate, and stay
 * until the canary policy promotes the step (or a person does). 10000 ("100%") is the promotion: the
 * candidate becomes the stable slot. The doubling ladder is a run of these.
 */
import { z } from 'zod';
import { defineStepKind } from './kind';

const percent = z
  .string()
  .regex(/^\d+(\.\d+)?%$/, 'a share in basis points (500) or a percentage ("5%")')
  .transform((text) => Math.round(Number(text.slice(0, -1)) * 100));

export const setShare = defineStepKind<number>({
  kind: 'setShare',
  schema: z
    .union([z.number(), percent])
    .pipe(
      z
        .number()
        .int('a share must be a whole number of basis points')
        .min(1, 'a share must be at least 1 basis point')
        .max(10000, 'a share is at most 10000 (100%)'),
    ),
  describe: (bps) => (bps >= 10000 ? 'promote to 100%' : `canary share ${bps / 100}%`),
  phase: (bps) => (bps >= 10000 ? 'promoting' : 'canary'),
  share: (bps) => bps,
  check({ index, steps }) {
    const shares = steps.slice(0, index).flatMap((s) => (s.share === undefined ? [] : [s.share]));
    const bps = steps[index].share!;
    const problems: string[] = [];
    if (shares.length > 0 && !(bps > shares[shares.length - 1]))
      problems.push(`shares must increase (${shares[shares.length - 1]} before ${bps})`);
    const later = steps.slice(index + 1).some((s) => s.share !== undefined);
    if (!later && bps !== 10000)
      problems.push('the last setShare must be 10000 (the promotion), or the candidate never takes over');
    return problems;
  },
});
