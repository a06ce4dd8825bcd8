import { z } from 'zod';
import { linearRegexProblem } from '../config/evaluators';

/**
 * An eval dataset: one JSON object per line (JSONL), the prompts that matter to the team, each with what a
 * good answer must satisfy. Read in full and checked before any model is called, so a typo on line 40 is
 * reported as `line 40: assert.1.regex: ...` instead of after 39 paid calls.
 */
const messageSchema = z.object({
  role: z.enum(['system', 'user', 'assistant']),
  content: z.string(),
});

const assertionSchema = z.union([
  z.object({ contains: z.string().min(1) }).strict(),
  z.object({ notContains: z.string().min(1) }).strict(),
  z
    .object({ regex: z.string().min(1) })
    .strict()
    .superRefine((a, ctx) => {
      const problem = linearRegexProblem(a.regex);
      if (problem) ctx.addIssue({ code: 'custom', path: ['regex'], message: problem });
    }),
  z.object({ jsonSchema: z.record(z.string(), z.unknown()) }).strict(),
  z.object({ toolCall: z.string().min(1) }).strict(),
  z
    .object({
      judge: z.string().min(1).describe('the rubric the judge scores the answer by, 1-5'),
      min: z.number().int().min(1).max(5).default(4),
    })
    .strict(),
]);

export const datasetItemSchema = z
  .object({
    id: z.string().min(1).optional(),
    prompt: z.string().min(1).optional(),
    messages: z.array(messageSchema).min(1).optional(),
    /** A reference answer: the answer must contain it (case and spacing aside) unless `assert` says more. */
    reference: z.string().min(1).optional(),
    assert: z.array(assertionSchema).min(1).optional(),
  })
  .strict()
  .superRefine((item, ctx) => {
    if (!item.prompt === !item.messages)
      ctx.addIssue({ code: 'custom', path: [], message: 'give exactly one of prompt or messages' });
    if (!item.reference && !item.assert)
      ctx.addIssue({ code: 'custom', path: [], message: 'give a reference or an assert list (what passes)' });
  });

export type Assertion = z.infer<typeof assertionSchema>;
export type DatasetItem = z.infer<typeof datasetItemSchema> & { id: string; line: number };

export class DatasetError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(
      `${source}: ${problems.slice(0, 10).join('; ')}${problems.length > 10 ? `; and ${problems.length - 10} more` : ''}`,
    );
    this.name = 'DatasetError';
  }
}

/** Parses a JSONL dataset; every problem is reported with its line, none is skipped silently. */
export function parseDataset(text: string, source = 'dataset'): DatasetItem[] {
  const items: DatasetItem[] = [];
  const problems: string[] = [];
  const ids = new Set<string>();
  text.split('\n').forEach((raw, index) => {
    const line = index + 1;
    if (raw.trim() === '' || raw.trimStart().startsWith('//')) return;
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch (err) {
      problems.push(`line ${line}: not JSON (${(err as Error).message})`);
      return;
    }
    const parsed = datasetItemSchema.safeParse(json);
    if (!parsed.success) {
      for (const issue of parsed.error.issues)
        problems.push(
          `line ${line}: ${issue.path.length ? `${issue.path.join('.')}: ` : ''}${issue.message}`,
        );
      return;
    }
    const id = parsed.data.id ?? `line-${line}`;
    if (ids.has(id)) problems.push(`line ${line}: id "${id}" is used twice`);
    ids.add(id);
    items.push({ ...parsed.data, id, line });
  });
  if (items.length === 0 && problems.length === 0) problems.push('no items');
  if (problems.length > 0) throw new DatasetError(source, problems);
  return items;
}

/** The messages an item sends. */
export function messagesOf(item: DatasetItem): { role: 'system' | 'user' | 'assistant'; content: string }[] {
  return item.messages ?? [{ role: 'user', content: item.prompt! }];
}
