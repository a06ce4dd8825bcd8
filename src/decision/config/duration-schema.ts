import { z } from 'zod';
import { parseDuration } from './duration';

const toMs = (value: string | number, ctx: z.RefinementCtx) => {
  try {
    return parseDuration(value);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
};

/** A duration field of a spec: '30s', '5m', '1h30m', '2d' or milliseconds in, milliseconds out. */
export function durationSchema(fallback: string) {
  return z.union([z.string(), z.number()]).default(fallback).transform(toMs);
}

/** A duration with no default that must be longer than 0. */
export function positiveDurationSchema() {
  return z
    .union([z.string(), z.number()])
    .transform(toMs)
    .refine((ms) => ms > 0, 'must be longer than 0');
}
