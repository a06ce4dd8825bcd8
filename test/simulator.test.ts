import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { gradeAnswer } from '../src/decision/scoring/reference';
import {
  findQuestionByPrompt,
  loadQuestions,
  loadScenarioFile,
  startSimulator,
  type ErrorKind,
  type ModelBehaviour,
  type Question,
  type SimulatorHandle,
} from '../src/tooling/simulator';

/**
 * The simulator through the real `openai` and `@anthropic-ai/sdk` clients over real HTTP: what the
 * provider adapters will see. Latencies are 0-2 ms so the whole file runs in a few seconds.
 */

const FAST: ModelBehaviour = { latencyMs: { median: 1, p99: 2 } };
const SEED = 7;

let sim: SimulatorHandle;
let openai: OpenAI;
let anthropic: Anthropic;

beforeAll(async () => {
  sim = await startSimulator({ scenario: { seed: SEED, default: FAST } });
  openai = new OpenAI({ apiKey: 'sk-test', baseURL: sim.openaiBaseUrl, maxRetries: 0 });
  anthropic = new Anthropic({ apiKey: 'sk-ant-test', baseURL: sim.anthropicBaseUrl, maxRetries: 0 });
});
afterAll(() => sim.close());
beforeEach(() => sim.reset());

const questions = loadQuestions();
const capitalOfFrance = findQuestionByPrompt('What is the capital of France?')!;
const extraction = questions.find((q) => q.kind === 'json')!;

const user = (content: string) => [{ role: 'user' as const, content }];

/** Every request to `model` fails with `kind`. */
function failWith(model: string, kind: ErrorKind, extra: ModelBehaviour = {}): string {
  sim.setBehaviour(model, { ...FAST, errorRate: 1, errorKinds: { [kind]: 1 }, ...extra });
  return model;
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail');
}

async function drainOpenAI(stream: AsyncIterable<OpenAI.ChatCompletionChunk>): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
  return text;
}

async function drainAnthropic(stream: AsyncIterable<Anthropic.RawMessageStreamEvent>): Promise<string> {
  let text = '';
  for await (const event of stream) {
    if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') text += event.delta.text;
  }
  return text;
}

describe('OpenAI wire format', () => {
  it('answers a known question in JSON with usage and an id', async () => {
    const completion = await openai.chat.completions.create({
      model: 'gpt-4o',
      messages: user(capitalOfFrance.prompt),
    });
    expect(completion.id).toMatch(/^chatcmpl-/);
    expect(completion.choices[0].finish_reason).toBe('stop');
    const text = completion.choices[0].message.content!;
    expect(text).toMatch(/\nAnswer: \S/);
    expect(gradeAnswer(capitalOfFrance, text).extracted).not.toBeNull();
    const { prompt_tokens, completion_tokens, total_tokens } = completion.usage!;
    expect(prompt_tokens).toBeGreaterThan(0);
    expect(completion_tokens).toBeGreaterThan(20);
    expect(total_tokens).toBe(prompt_tokens + completion_tokens);
  });

  it('streams chunks, then a usage chunk when include_usage is set', async () => {
    const stream = await openai.chat.completions.create({
      model: 'gpt-4o',
      messages: user(capitalOfFrance.prompt),
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.length).toBeGreaterThan(3);
    expect(chunks.every((chunk) => chunk.object === 'chat.completion.chunk')).toBe(true);
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage!.completion_tokens).toBeGreaterThan(0);
    expect(chunks.at(-2)!.choices[0].finish_reason).toBe('stop');
    const text = chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('');
    expect(text).toMatch(/\nAnswer: \S/);
  });

  it('truncates at max_tokens with finish_reason length, in JSON and streaming', async () => {
    const completion = await openai.chat.completions.create({
      model: 'gpt-4o',
      messages: user(capitalOfFrance.prompt),
      max_completion_tokens: 5,
    });
    expect(completion.choices[0].finish_reason).toBe('length');
    expect(completion.usage!.completion_tokens).toBe(5);
    expect(completion.choices[0].message.content).not.toContain('Answer:');

    const stream = await openai.chat.completions.create({
      model: 'gpt-4o',
      messages: user(capitalOfFrance.prompt),
      max_tokens: 5,
      stream: true,
    });
    const finishReasons: (string | null)[] = [];
    for await (const chunk of stream) finishReasons.push(chunk.choices[0]?.finish_reason ?? null);
    expect(finishReasons.at(-1)).toBe('length');
  });

  it('returns valid JSON when response_format asks for a JSON object', async () => {
    for (const question of [capitalOfFrance, extraction]) {
      const completion = await openai.chat.completions.create({
        model: 'gpt-4o',
        messages: user(question.prompt),
        response_format: { type: 'json_object' },
      });
      const parsed: unknown = JSON.parse(completion.choices[0].message.content!);
      expect(parsed).toBeTypeOf('object');
    }
  });

  it('answers unknown prompts with a generic reply', async () => {
    const completion = await openai.chat.completions.create({
      model: 'some-unknown-model',
      messages: user('Tell me something about the weather.'),
    });
    expect(completion.choices[0].message.content!.length).toBeGreaterThan(40);
  });

  it('serves the Gemini and DeepSeek OpenAI-compatible paths', async () => {
    for (const baseURL of [`${sim.url}/v1beta/openai`, sim.url]) {
      const client = new OpenAI({ apiKey: 'k', baseURL, maxRetries: 0 });
      const completion = await client.chat.completions.create({ model: 'x', messages: user('hi') });
      expect(completion.choices[0].message.content).toBeTruthy();
    }
  });
});

describe('Anthropic wire format', () => {
  it('answers a known question with usage and end_turn', async () => {
    const message = await anthropic.messages.create({
      model: 'claude-sonnet-4',
      max_tokens: 1024,
      messages: user(capitalOfFrance.prompt),
    });
    expect(message.id).toMatch(/^msg_/);
    expect(message.stop_reason).toBe('end_turn');
    expect(message.usage.input_tokens).toBeGreaterThan(0);
    expect(message.usage.output_tokens).toBeGreaterThan(20);
    const block = message.content[0];
    expect(block.type === 'text' && block.text).toMatch(/\nAnswer: \S/);
  });

  it('streams every event type through the SDK stream helper', async () => {
    const events: string[] = [];
    const stream = anthropic.messages.stream({
      model: 'claude-sonnet-4',
      max_tokens: 1024,
      messages: user(capitalOfFrance.prompt),
    });
    stream.on('streamEvent', (event) => events.push(event.type));
    const message = await stream.finalMessage();
    expect(new Set(events)).toEqual(
      new Set([
        'message_start',
        'content_block_start',
        'content_block_delta',
        'content_block_stop',
        'message_delta',
        'message_stop',
      ]),
    );
    expect(message.stop_reason).toBe('end_turn');
    expect(message.usage.output_tokens).toBeGreaterThan(20);
    expect(message.content[0].type === 'text' && message.content[0].text).toMatch(/\nAnswer: \S/);
  });

  it('stops at max_tokens, in JSON and streaming', async () => {
    const message = await anthropic.messages.create({
      model: 'c',
      max_tokens: 4,
      messages: user(capitalOfFrance.prompt),
    });
    expect(message.stop_reason).toBe('max_tokens');
    expect(message.usage.output_tokens).toBe(4);

    const streamed = await anthropic.messages
      .stream({ model: 'c', max_tokens: 4, messages: user(capitalOfFrance.prompt) })
      .finalMessage();
    expect(streamed.stop_reason).toBe('max_tokens');
  });

  it('answers in JSON when the system prompt asks for JSON', async () => {
    const message = await anthropic.messages.create({
      model: 'c',
      max_tokens: 1024,
      system: 'Reply with a JSON object only.',
      messages: user(capitalOfFrance.prompt),
    });
    const block = message.content[0];
    expect(JSON.parse(block.type === 'text' ? block.text : '')).toHaveProperty('answer');
  });

  it('refuses a request without max_tokens, as Anthropic does', async () => {
    const response = await fetch(`${sim.url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': 'k', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'c', messages: user('hi') }),
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } });
  });
});

describe('error kinds, as each SDK sees them', () => {
  it('rate_limit: RateLimitError with retry-after', async () => {
    const model = failWith('limited', 'rate_limit', { retryAfterSeconds: 7 });
    const error = await caught(openai.chat.completions.create({ model, messages: user('hi') }));
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect((error as InstanceType<typeof OpenAI.RateLimitError>).headers.get('retry-after')).toBe('7');

    const anthropicError = await caught(
      anthropic.messages.create({ model, max_tokens: 10, messages: user('hi') }),
    );
    expect(anthropicError).toBeInstanceOf(Anthropic.RateLimitError);
    expect((anthropicError as InstanceType<typeof Anthropic.RateLimitError>).headers.get('retry-after')).toBe(
      '7',
    );
  });

  it('server_error: InternalServerError 500', async () => {
    const model = failWith('broken', 'server_error');
    const error = await caught(openai.chat.completions.create({ model, messages: user('hi') }));
    expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    expect(error).toMatchObject({ status: 500 });
    const anthropicError = await caught(
      anthropic.messages.create({ model, max_tokens: 10, messages: user('hi') }),
    );
    expect(anthropicError).toBeInstanceOf(Anthropic.InternalServerError);
    expect(anthropicError).toMatchObject({
      status: 500,
      error: { type: 'error', error: { type: 'api_error' } },
    });
  });

  it('overloaded: 529 overloaded_error on Anthropic, 503 on OpenAI', async () => {
    const model = failWith('busy', 'overloaded');
    const anthropicError = await caught(
      anthropic.messages.create({ model, max_tokens: 10, messages: user('hi') }),
    );
    expect(anthropicError).toBeInstanceOf(Anthropic.InternalServerError);
    expect(anthropicError).toMatchObject({ status: 529, error: { error: { type: 'overloaded_error' } } });
    const error = await caught(openai.chat.completions.create({ model, messages: user('hi') }));
    expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    expect(error).toMatchObject({ status: 503 });
  });

  it('bad_request and auth: BadRequestError 400, AuthenticationError 401', async () => {
    const badModel = failWith('picky', 'bad_request');
    expect(
      await caught(openai.chat.completions.create({ model: badModel, messages: user('hi') })),
    ).toBeInstanceOf(OpenAI.BadRequestError);
    expect(
      await caught(anthropic.messages.create({ model: badModel, max_tokens: 10, messages: user('hi') })),
    ).toBeInstanceOf(Anthropic.BadRequestError);

    const authModel = failWith('locked', 'auth');
    expect(
      await caught(openai.chat.completions.create({ model: authModel, messages: user('hi') })),
    ).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(
      await caught(anthropic.messages.create({ model: authModel, max_tokens: 10, messages: user('hi') })),
    ).toBeInstanceOf(Anthropic.AuthenticationError);
  });

  it('malformed: the SDK fails to parse the 200 body or stream event', async () => {
    const model = failWith('garbled', 'malformed');
    expect(await caught(openai.chat.completions.create({ model, messages: user('hi') }))).toBeInstanceOf(
      SyntaxError,
    );
    expect(
      await caught(anthropic.messages.create({ model, max_tokens: 10, messages: user('hi') })),
    ).toBeInstanceOf(SyntaxError);
    // The SDK logs the unparsable event before throwing; keep the test output clean.
    const quiet = new OpenAI({ apiKey: 'k', baseURL: sim.openaiBaseUrl, maxRetries: 0, logLevel: 'off' });
    const stream = await quiet.chat.completions.create({ model, messages: user('hi'), stream: true });
    expect(await caught(drainOpenAI(stream))).toBeInstanceOf(SyntaxError);
    const quietAnthropic = new Anthropic({
      apiKey: 'k',
      baseURL: sim.anthropicBaseUrl,
      maxRetries: 0,
      logLevel: 'off',
    });
    const anthropicStream = await quietAnthropic.messages.create({
      model,
      max_tokens: 10,
      messages: user('hi'),
      stream: true,
    });
    expect(await caught(drainAnthropic(anthropicStream))).toBeInstanceOf(SyntaxError);
  });

  it('drop_mid_stream: connection error in JSON mode, cut stream after some text when streaming', async () => {
    const model = failWith('flaky', 'drop_mid_stream');
    expect(await caught(openai.chat.completions.create({ model, messages: user('hi') }))).toBeInstanceOf(
      OpenAI.APIConnectionError,
    );
    expect(
      await caught(anthropic.messages.create({ model, max_tokens: 10, messages: user('hi') })),
    ).toBeInstanceOf(Anthropic.APIConnectionError);

    // Both SDKs surface a body cut short as undici's own `TypeError: terminated`, not an APIError.
    let received = '';
    const stream = await openai.chat.completions.create({
      model,
      messages: user(capitalOfFrance.prompt),
      stream: true,
    });
    const error = await caught(
      (async () => {
        for await (const chunk of stream) received += chunk.choices[0]?.delta.content ?? '';
      })(),
    );
    expect(error).toMatchObject({ name: 'TypeError', message: 'terminated' });
    expect(received.length).toBeGreaterThan(0);

    const anthropicStream = await anthropic.messages.create({
      model,
      max_tokens: 100,
      messages: user(capitalOfFrance.prompt),
      stream: true,
    });
    expect(await caught(drainAnthropic(anthropicStream))).toMatchObject({
      name: 'TypeError',
      message: 'terminated',
    });
  });

  it('timeout: the SDK gives up with APIConnectionTimeoutError, and the server keeps no timer', async () => {
    const model = failWith('stuck', 'timeout');
    const impatient = new OpenAI({ apiKey: 'k', baseURL: sim.openaiBaseUrl, maxRetries: 0, timeout: 150 });
    const impatientAnthropic = new Anthropic({
      apiKey: 'k',
      baseURL: sim.anthropicBaseUrl,
      maxRetries: 0,
      timeout: 150,
    });
    const timersBefore = countTimers();

    const pending = [
      caught(impatient.chat.completions.create({ model, messages: user('hi') })),
      caught(impatientAnthropic.messages.create({ model, max_tokens: 10, messages: user('hi') })),
    ];
    // While those hang, other requests are answered at once.
    const started = Date.now();
    await openai.chat.completions.create({ model: 'gpt-4o', messages: user('hi') });
    expect(Date.now() - started).toBeLessThan(100);

    const [error, anthropicError] = await Promise.all(pending);
    expect(error).toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
    expect(anthropicError).toBeInstanceOf(Anthropic.APIConnectionTimeoutError);
    await waitFor(() => countTimers() <= timersBefore);
  });

  it('refuses requests without an API key, in the wire format of the path', async () => {
    const response = await fetch(`${sim.openaiBaseUrl}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o', messages: user('hi') }),
    });
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({
      error: { type: 'invalid_request_error', code: 'invalid_api_key' },
    });
  });
});

describe('behaviour', () => {
  it('slow requests do not hold up fast ones', async () => {
    sim.setBehaviour('slow', { latencyMs: { median: 400, p99: 400 } });
    const slow = openai.chat.completions
      .create({ model: 'slow', messages: user('hi') })
      .then(() => Date.now());
    const fastDone = await Promise.all(
      Array.from({ length: 10 }, () =>
        openai.chat.completions.create({ model: 'fast', messages: user('hi') }).then(() => Date.now()),
      ),
    );
    expect(Math.max(...fastDone)).toBeLessThan(await slow);
  });

  it('paces stream chunks by streamChunkDelayMs', async () => {
    sim.setBehaviour('paced', { ...FAST, streamChunkDelayMs: 15, outputTokens: 20 });
    const started = Date.now();
    const stream = await openai.chat.completions.create({
      model: 'paced',
      messages: user('hi'),
      stream: true,
    });
    await drainOpenAI(stream);
    // About 20 tokens in 4-token chunks: at least 5 pauses of 15 ms.
    expect(Date.now() - started).toBeGreaterThanOrEqual(70);
  });

  it('is reproducible with a seed: after reset the same requests get the same answers', async () => {
    const ask = async () => {
      const answers: string[] = [];
      for (const question of questions.slice(0, 20)) {
        const completion = await openai.chat.completions.create({
          model: 'gpt-4o',
          messages: user(question.prompt),
        });
        answers.push(completion.choices[0].message.content!);
      }
      return answers;
    };
    const first = await ask();
    sim.reset();
    expect(await ask()).toEqual(first);
  });

  it.each([
    { accuracy: 0.9, sdk: 'openai' as const },
    { accuracy: 0.5, sdk: 'anthropic' as const },
  ])('accuracy $accuracy is what the reference grader measures ($sdk)', async ({ accuracy, sdk }) => {
    const model = `accuracy-${accuracy}`;
    sim.setBehaviour(model, { ...FAST, accuracy });
    const asked = questions.slice(0, 300);
    const answerOf = async (question: Question): Promise<string> => {
      if (sdk === 'openai') {
        const completion = await openai.chat.completions.create({ model, messages: user(question.prompt) });
        return completion.choices[0].message.content!;
      }
      const message = await anthropic.messages.create({
        model,
        max_tokens: 1024,
        messages: user(question.prompt),
      });
      return message.content[0].type === 'text' ? message.content[0].text : '';
    };
    const grades = await mapConcurrently(asked, 16, async (question) =>
      gradeAnswer(question, await answerOf(question)),
    );
    const measured = grades.filter((grade) => grade.correct).length / grades.length;
    expect(measured).toBeGreaterThan(accuracy - 0.06);
    expect(measured).toBeLessThan(accuracy + 0.06);
    // Every answer was gradable: wrong answers are plausible values, not gibberish.
    expect(grades.every((grade) => grade.extracted !== null)).toBe(true);
  });

  it('counts requests by model', async () => {
    await openai.chat.completions.create({ model: 'counted-a', messages: user('hi') });
    await openai.chat.completions.create({ model: 'counted-a', messages: user('hi') });
    await anthropic.messages.create({ model: 'counted-b', max_tokens: 10, messages: user('hi') });
    expect(sim.stats()).toEqual({ requests: 3, byModel: { 'counted-a': 2, 'counted-b': 1 }, aborted: 0 });
  });
});

describe('admin API', () => {
  const admin = (method: string, path: string, body?: unknown) =>
    fetch(`${sim.url}${path}`, { method, body: body === undefined ? undefined : JSON.stringify(body) });

  it('changes a model at run time, reports stats, and resets', async () => {
    expect(await (await admin('GET', '/healthz')).json()).toEqual({ ok: true });
    await openai.chat.completions.create({ model: 'live', messages: user('hi') });

    const put = await admin('PUT', '/admin/models/live', {
      errorRate: 1,
      errorKinds: { auth: 1 },
      latencyMs: { median: 0 },
    });
    expect(put.status).toBe(200);
    expect(
      await caught(openai.chat.completions.create({ model: 'live', messages: user('hi') })),
    ).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(await (await admin('GET', '/admin/models')).json()).toMatchObject({
      seed: SEED,
      models: { live: { errorRate: 1 } },
    });
    expect(await (await admin('GET', '/admin/stats')).json()).toEqual({
      requests: 2,
      byModel: { live: 2 },
      aborted: 0,
    });

    expect((await admin('POST', '/admin/reset')).status).toBe(200);
    await openai.chat.completions.create({ model: 'live', messages: user('hi') });
    expect(sim.stats()).toEqual({ requests: 1, byModel: { live: 1 }, aborted: 0 });
  });

  it('rejects invalid behaviour with the field and the reason', async () => {
    const response = await admin('PUT', '/admin/models/gpt-4.1', {
      accuracy: 1.5,
      errorrate: 0.1,
      latencyMs: { median: -1 },
    });
    expect(response.status).toBe(400);
    const { error } = (await response.json()) as {
      error: { message: string; issues: { field: string; reason: string }[] };
    };
    expect(error.issues.map((issue) => issue.field).sort()).toEqual([
      'accuracy',
      'errorrate',
      'latencyMs.median',
    ]);
    expect(error.issues.find((issue) => issue.field === 'errorrate')!.reason).toBe('unknown field');

    const notJson = await fetch(`${sim.url}/admin/models/x`, { method: 'PUT', body: '{' });
    expect(notJson.status).toBe(400);
  });

  it('setBehaviour validates too', () => {
    expect(() => sim.setBehaviour('x', { errorRate: 2 })).toThrow(/errorRate/);
  });
});

describe('scenario files', () => {
  const write = (content: unknown) => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'scenario-')), 'scenario.json');
    fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
    return file;
  };

  it('loads a valid scenario', () => {
    const scenario = {
      seed: 1,
      default: { accuracy: 0.8 },
      models: { 'gpt-4o': { errorRate: 0.2, errorKinds: { timeout: 1 } } },
    };
    expect(loadScenarioFile(write(scenario))).toEqual(scenario);
  });

  it('names the file and the field in errors', () => {
    const file = write({
      models: { 'gpt-4.1': { accuracy: 'high' } },
      default: { errorKinds: { teapot: 1 } },
    });
    expect(() => loadScenarioFile(file)).toThrow(file);
    expect(() => loadScenarioFile(file)).toThrow('models["gpt-4.1"].accuracy');
    expect(() => loadScenarioFile(file)).toThrow('default.errorKinds.teapot: unknown field');
    expect(() => loadScenarioFile(write('{ not json'))).toThrow(/invalid JSON/);
  });
});

// ---------------------------------------------------------------------------------------------------

function countTimers(): number {
  return process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length;
}

async function waitFor(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function mapConcurrently<T, R>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index]);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return results;
}
