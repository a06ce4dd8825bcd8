import { z } from 'zod';

/** Every evaluator's weight in the weighted mean of an explicit list. */
export const weight = z.number().positive().max(100).default(1);
