/**
 * An application that routes in-process: a support bot that asks `createRouter` for each answer instead of
 * calling a gateway over HTTP. The route (`support-bot`) and its rollouts are the same as behind the gateway:
 * `model-rollout start` moves this process's users to the candidate step by step, and a rollback reaches it
 * within a second, without a restart. Every answer is recorded as a request event, so the rollout's
 * statistics and scoring see this application's traffic like the gateway's.
 *
 *   DATABASE_URL=postgres://... npx tsx examples/in-process/app.ts --user alice "How do I reset my password?"
 *   (--simulator http://127.0.0.1:4010 sends every provider to `model-rollout simulator`)
 */
import { parseArgs } from 'node:util';
import { createRouter, deploymentRegistry, migrate, openDatabase, simulatorRegistry } from 'model-rollout';

export interface SupportBotOptions {
  /** Default DATABASE_URL (or the checkout's embedded Postgres): the database the rollouts write to. */
  databaseUrl?: string;
  /** Send every provider to the provider simulator at this URL instead of the real APIs. */
  simulatorUrl?: string;
  route?: string;
}

export interface Answer {
  text: string;
  /** `provider:model` that answered, the request's id (for feedback) and the arm it was on. */
  model: string;
  requestId: string;
  arm: 'stable' | 'canary';
}

export interface SupportBot {
  /** The user id is the routing key: a user stays on one arm while the canary share grows. */
  answer(userId: string, question: string): Promise<Answer>;
  close(): Promise<void>;
}

const SYSTEM = 'You are the support assistant of Example Inc. Answer briefly and precisely.';

export async function createSupportBot(options: SupportBotOptions = {}): Promise<SupportBot> {
  const database = await openDatabase({ url: options.databaseUrl });
  await migrate(database.pool);
  const router = await createRouter({
    database,
    providers: {
      registry: options.simulatorUrl ? simulatorRegistry(options.simulatorUrl) : deploymentRegistry(),
      // A 429 or a 5xx gets two more tries of the same model before the route's fallbacks.
      retry: { maxRetries: 2 },
    },
  });
  const route = options.route ?? 'support-bot';
  return {
    async answer(userId, question) {
      const result = await router.complete(route, {
        key: userId,
        caller: 'support-app',
        messages: [
          { role: 'system', content: SYSTEM },
          { role: 'user', content: question },
        ],
      });
      return { text: result.text, model: result.target, requestId: result.requestId, arm: result.tag };
    },
    async close() {
      await router.close(); // writes the request events still buffered
      await database.close();
    },
  };
}

const runDirectly = process.argv[1]?.endsWith('app.ts');
if (runDirectly) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { user: { type: 'string', default: 'anonymous' }, simulator: { type: 'string' } },
  });
  const bot = await createSupportBot({ simulatorUrl: values.simulator });
  try {
    const answer = await bot.answer(values.user, positionals.join(' ') || 'How do I reset my password?');
    console.log(`${answer.model} (${answer.arm}, request ${answer.requestId}):\n${answer.text}`);
  } finally {
    await bot.close();
  }
}
