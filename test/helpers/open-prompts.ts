import { findQuestionByPrompt } from '../../src/tooling/simulator';

/**
 * Prompts as a support bot would get them: open questions, none of them in the simulator's question set,
 * so no reference grading can apply; only a judge (or the team's own evaluator) can tell good from bad.
 */
const SUBJECTS = [
  'refunds for cancelled subscriptions',
  'migrating invoices between workspaces',
  'resetting two-factor authentication',
  'exporting quarterly analytics dashboards',
  'shipping delays for international parcels',
  'upgrading enterprise billing plans',
  'merging duplicate customer accounts',
  'configuring single sign-on with Okta',
  'troubleshooting webhook deliveries',
  'scheduling recurring maintenance windows',
];
const ASKS = [
  'How do I handle {s}?',
  'Can you explain the steps for {s}?',
  'What are common mistakes with {s}?',
  'Our team struggles with {s}; any advice?',
  'Give me a short checklist for {s}.',
];

export const OPEN_PROMPTS: readonly string[] = SUBJECTS.flatMap((s) => ASKS.map((a) => a.replace('{s}', s)));

for (const prompt of OPEN_PROMPTS) {
  if (findQuestionByPrompt(prompt)) throw new Error(`open prompt is in the question set: ${prompt}`);
}
