import OpenAI from 'openai';
import type { RunnableToolFunctionWithParse } from 'openai/lib/RunnableFunction';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createGateway } from '../src/data-plane/gateway/server';
import { simulatorRegistry, type Target } from '../src/data-plane/providers';
import { createRouter, type Router } from '../src/data-plane/router/router';
import { startSimulator, type SimulatorHandle } from '../src/tooling/simulator';
import { createRoute, type CreateRouteInput, type SlotConfig } from '../src/store/routing-state';
import { createTestDatabase, type TestDatabase } from './helpers/db';

/**
 * What real applications send, through the gateway: the official `openai` client → gateway → router →
 * lean transport / Anthropic SDK → simulator over HTTP. Function calling (plain, streamed, the SDK's
 * `runTools` loop), images, JSON schemas, every other parameter as written; streams bounded per gap, not
 * per length; client hang-ups; retries before fallback; the larger-context fallback. No mocks.
 */

const KEY = 'sk-surface-test-0123456789';
const CTX = { actor: 'test', reason: 'test' };
const t = (provider: string, model: string, extra: Partial<Target> = {}): Target => ({
  provider,
  model,
  ...extra,
});
const slot = (target: Target, ...fallbacks: Target[]): SlotConfig => ({ target, fallbacks });

let db: TestDatabase;
let sim: SimulatorHandle;
let router: Router;
let url: string;
let client: OpenAI;
let closeGateway: () => Promise<void>;

async function route(input: CreateRouteInput) {
  await createRoute(db.pool, input, CTX);
  const t0 = performance.now();
  while (router.state(input.name) === undefined) {
    if (performance.now() - t0 > 2000) throw new Error(`route ${input.name} never reached the router`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The last body the simulator received for `model`. */
function received(model: string): Record<string, unknown> {
  const bodies = sim.received().filter((r) => (r.body as { model?: string }).model === model);
  if (bodies.length === 0) throw new Error(`the simulator received nothing for ${model}`);
  return bodies[bodies.length - 1].body as Record<string, unknown>;
}

async function eventsOfClientId(clientRequestId: string) {
  await router.flush();
  const { rows } = await db.pool.query(
    'SELECT request_id, error_class FROM request_events WHERE client_request_id = $1 ORDER BY id',
    [clientRequestId],
  );
  return rows as { request_id: string; error_class: string | null }[];
}

async function eventsOf(requestId: string) {
  await router.flush();
  const { rows } = await db.pool.query(
    `SELECT tag, target, error_class, answer, fallback_depth, finish_reason, tool_calls
       FROM request_events WHERE request_id = $1 ORDER BY tag = 'shadow', id`,
    [requestId],
  );
  return rows as {
    tag: string;
    target: string;
    error_class: string | null;
    answer: string | null;
    finish_reason: string | null;
    tool_calls: unknown;
  }[];
}

const weather: OpenAI.ChatCompletionTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather in a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
      required: ['city', 'unit'],
    },
  },
};
const time: OpenAI.ChatCompletionTool = {
  type: 'function',
  function: {
    name: 'get_time',
    description: 'Local time in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};
// A prompt the simulator's question set does not know.
const weatherPrompt = 'Should I take an umbrella to my meeting in Lisbon this afternoon?';
// A 1x1 PNG.
const PIXEL =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

beforeAll(async () => {
  db = await createTestDatabase();
  sim = await startSimulator({ scenario: { default: { latencyMs: { median: 2, p99: 4 }, accuracy: 1 } } });
  router = await createRouter({
    database: db,
    providers: {
      registry: simulatorRegistry(sim.url),
      perAttemptTimeoutMs: 3000,
      streamIdleTimeoutMs: 1000,
      retry: { maxRetries: 2, baseDelayMs: 20, maxDelayMs: 2000 },
    },
    capture: { enabled: true },
    keepRaw: true,
  });
  const gateway = createGateway({ router, auth: { keys: [KEY] } });
  url = await gateway.listen({ port: 0 });
  closeGateway = () => gateway.close();
  client = new OpenAI({ baseURL: `${url}/v1`, apiKey: KEY, maxRetries: 0 });
  await route({
    name: 'agent',
    blue: slot(t('openai', 'gpt-4o-mini', { params: { temperature: 0.1, maxTokens: 300 } })),
  });
});

afterAll(async () => {
  await closeGateway?.();
  await router?.close();
  await sim?.close();
  await db?.close();
});

beforeEach(() => sim.reset());

describe('the Chat Completions surface reaches an OpenAI-compatible upstream as written', () => {
  it('function calling: tools, tool_choice and parallel_tool_calls go up, tool_calls come back', async () => {
    const { data, response } = await client.chat.completions
      .create({
        model: 'agent',
        messages: [{ role: 'user', content: `${weatherPrompt} Use get_weather and get_time.` }],
        tools: [weather, time],
        tool_choice: 'auto',
        parallel_tool_calls: true,
      })
      .withResponse();
    const message = data.choices[0].message;
    expect(data.choices[0].finish_reason).toBe('tool_calls');
    expect(message.content).toBeNull();
    expect(message.tool_calls?.map((c) => c.type === 'function' && c.function.name)).toEqual([
      'get_weather',
      'get_time',
    ]);
    const call = message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall;
    expect(JSON.parse(call.function.arguments)).toEqual({ city: 'Lisbon', unit: 'celsius' });

    const upstream = received('gpt-4o-mini');
    expect(upstream.tools).toEqual([weather, time]);
    expect(upstream.tool_choice).toBe('auto');
    expect(upstream.parallel_tool_calls).toBe(true);
    // The default quality check takes a tool call (no text) as an answer, and the event says what it was.
    const events = await eventsOf(response.headers.get('x-request-id')!);
    expect(events).toEqual([
      expect.objectContaining({
        tag: 'stable',
        error_class: null,
        fallback_depth: 0,
        finish_reason: 'tool_calls',
        tool_calls: JSON.parse(JSON.stringify(message.tool_calls)),
        answer:
          '[tool call] get_weather({"city":"Lisbon","unit":"celsius"})\n[tool call] get_time({"city":"Lisbon"})',
      }),
    ]);
  });

  it('sends the tool results back and gets the answer (assistant tool_calls + tool messages)', async () => {
    const first = await client.chat.completions.create({
      model: 'agent',
      messages: [{ role: 'user', content: weatherPrompt }],
      tools: [weather],
    });
    const assistant = first.choices[0].message;
    const call = assistant.tool_calls![0];
    const second = await client.chat.completions.create({
      model: 'agent',
      messages: [
        { role: 'user', content: weatherPrompt },
        assistant,
        { role: 'tool', tool_call_id: call.id, content: '14 C and light rain' },
      ],
      tools: [weather],
    });
    expect(second.choices[0].finish_reason).toBe('stop');
    expect(second.choices[0].message.content).toContain('14 C and light rain');
    const upstream = received('gpt-4o-mini');
    expect((upstream.messages as unknown[])[1]).toEqual(JSON.parse(JSON.stringify(assistant)));
    expect((upstream.messages as unknown[])[2]).toEqual({
      role: 'tool',
      tool_call_id: call.id,
      content: '14 C and light rain',
    });
  });

  it('streams tool-call deltas in OpenAI chunk shape (the SDK assembles the calls)', async () => {
    const stream = client.chat.completions.stream({
      model: 'agent',
      messages: [{ role: 'user', content: `${weatherPrompt} get_weather and get_time please` }],
      tools: [weather, time],
      stream_options: { include_usage: true },
    });
    const final = await stream.finalChatCompletion();
    const calls = final.choices[0].message.tool_calls as OpenAI.ChatCompletionMessageFunctionToolCall[];
    expect(calls.map((c) => c.function.name)).toEqual(['get_weather', 'get_time']);
    expect(JSON.parse(calls[1].function.arguments)).toEqual({ city: 'Lisbon' });
    expect(final.choices[0].finish_reason).toBe('tool_calls');
    expect(final.usage?.prompt_tokens).toBeGreaterThan(0);
  });

  it("runs the SDK's runTools loop to a final answer (non-streaming and streaming)", async () => {
    const calls: string[] = [];
    const tool: RunnableToolFunctionWithParse<{ city: string; unit: string }> = {
      type: 'function',
      function: {
        name: 'get_weather',
        description: 'Current weather in a city',
        parameters: weather.function.parameters!,
        parse: (input: string) => JSON.parse(input) as { city: string; unit: string },
        function: ({ city }: { city: string; unit: string }) => {
          calls.push(city);
          return `${city}: 19 degrees, sunny`;
        },
      },
    };
    const runner = client.chat.completions.runTools({
      model: 'agent',
      messages: [{ role: 'user', content: weatherPrompt }],
      tools: [tool],
    });
    expect(await runner.finalContent()).toContain('Lisbon: 19 degrees, sunny');
    const streaming = client.chat.completions.runTools({
      model: 'agent',
      messages: [{ role: 'user', content: weatherPrompt }],
      tools: [tool],
      stream: true,
    });
    expect(await streaming.finalContent()).toContain('Lisbon: 19 degrees, sunny');
    expect(calls).toEqual(['Lisbon', 'Lisbon']);
  });

  it('passes images (base64 data URL and https URL) through untouched', async () => {
    const content: OpenAI.ChatCompletionContentPart[] = [
      { type: 'text', text: 'What is in these pictures?' },
      { type: 'image_url', image_url: { url: `data:image/png;base64,${PIXEL}`, detail: 'low' } },
      { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg' } },
    ];
    const completion = await client.chat.completions.create({
      model: 'agent',
      messages: [{ role: 'user', content }],
    });
    expect(completion.choices[0].message.content).toContain('I see 2 images');
    expect((received('gpt-4o-mini').messages as { content: unknown }[])[0].content).toEqual(content);
  });

  it('response_format with a JSON schema: the upstream gets the schema, the answer is an instance', async () => {
    const schema = {
      type: 'object',
      properties: { city: { type: 'string' }, rain: { type: 'boolean' }, hours: { type: 'integer' } },
      required: ['city', 'rain', 'hours'],
      additionalProperties: false,
    };
    const completion = await client.chat.completions.create({
      model: 'agent',
      messages: [{ role: 'user', content: weatherPrompt }],
      response_format: { type: 'json_schema', json_schema: { name: 'forecast', strict: true, schema } },
    });
    expect(JSON.parse(completion.choices[0].message.content!)).toEqual({
      city: 'Lisbon',
      rain: true,
      hours: 1,
    });
    expect(received('gpt-4o-mini').response_format).toEqual({
      type: 'json_schema',
      json_schema: { name: 'forecast', strict: true, schema },
    });
  });

  it('every other parameter reaches the upstream unchanged; route params merge under the caller', async () => {
    const params = {
      stop: ['Answer:'],
      seed: 42,
      top_p: 0.9,
      frequency_penalty: 0.5,
      presence_penalty: -0.25,
      logprobs: true,
      top_logprobs: 2,
      logit_bias: { '50256': -100 },
      reasoning_effort: 'low' as const,
      service_tier: 'auto' as const,
      temperature: 0.7,
      n: 1,
    };
    const completion = await client.chat.completions.create({
      model: 'agent',
      messages: [{ role: 'user', content: 'What is the capital of Portugal? Think step by step.' }],
      ...params,
    });
    const upstream = received('gpt-4o-mini');
    // The caller's fields as written; only `model` replaced; the route's max_tokens filled in under them
    // (the route's temperature 0.1 lost to the caller's 0.7).
    expect(upstream).toEqual({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'What is the capital of Portugal? Think step by step.' }],
      ...params,
      max_tokens: 300,
    });
    // The simulator honours stop: the answer ends before the stop sequence.
    expect(completion.choices[0].message.content).not.toContain('Answer:');
  });

  it('lists the routes as models (GET /v1/models)', async () => {
    const models = [];
    for await (const model of client.models.list()) models.push(model);
    expect(models).toContainEqual(
      expect.objectContaining({ id: 'agent', object: 'model', owned_by: 'model-rollout' }),
    );
  });
});

describe('an Anthropic target is translated field by field', () => {
  beforeAll(async () => {
    await route({ name: 'claude-agent', blue: slot(t('anthropic', 'claude-sonnet-4')) });
  });

  it('tools, tool_choice, parallel calls, system and developer messages, stop and top_p', async () => {
    const completion = await client.chat.completions.create({
      model: 'claude-agent',
      messages: [
        { role: 'system', content: 'You are a travel assistant.' },
        { role: 'developer', content: 'Prefer metric units.' },
        { role: 'user', content: `${weatherPrompt} Use get_weather and get_time.` },
      ],
      tools: [weather, time],
      tool_choice: 'required',
      stop: ['END'],
      top_p: 0.8,
      temperature: 0.3,
      max_completion_tokens: 500,
      user: 'traveller-7',
    });
    const message = completion.choices[0].message;
    expect(completion.choices[0].finish_reason).toBe('tool_calls');
    const calls = message.tool_calls as OpenAI.ChatCompletionMessageFunctionToolCall[];
    expect(calls.map((c) => c.function.name)).toEqual(['get_weather', 'get_time']);
    expect(JSON.parse(calls[0].function.arguments)).toEqual({ city: 'Lisbon', unit: 'celsius' });
    expect(calls[0].id).toMatch(/^call_/);
    expect(received('claude-sonnet-4')).toEqual({
      model: 'claude-sonnet-4',
      max_tokens: 500,
      system: 'You are a travel assistant.\n\nPrefer metric units.',
      messages: [
        { role: 'user', content: [{ type: 'text', text: `${weatherPrompt} Use get_weather and get_time.` }] },
      ],
      temperature: 0.3,
      top_p: 0.8,
      stop_sequences: ['END'],
      metadata: { user_id: 'traveller-7' },
      tools: [
        {
          name: 'get_weather',
          description: 'Current weather in a city',
          input_schema: weather.function.parameters,
        },
        { name: 'get_time', description: 'Local time in a city', input_schema: time.function.parameters },
      ],
      tool_choice: { type: 'any' },
    });
  });

  it("runs the SDK's runTools loop against Claude (tool results and assistant tool calls translated)", async () => {
    const calls: string[] = [];
    const tool: RunnableToolFunctionWithParse<{ city: string; unit: string }> = {
      type: 'function',
      function: {
        name: 'get_weather',
        description: 'Current weather in a city',
        parameters: weather.function.parameters!,
        parse: (input: string) => JSON.parse(input) as { city: string; unit: string },
        function: ({ city }: { city: string; unit: string }) => {
          calls.push(city);
          return `${city}: 17 degrees, windy`;
        },
      },
    };
    const request = {
      model: 'claude-agent',
      messages: [{ role: 'user' as const, content: weatherPrompt }],
      tools: [tool],
      parallel_tool_calls: false,
    };
    expect(await client.chat.completions.runTools(request).finalContent()).toContain(
      'Lisbon: 17 degrees, windy',
    );
    const streaming = client.chat.completions.runTools({ ...request, stream: true });
    expect(await streaming.finalContent()).toContain('Lisbon: 17 degrees, windy');
    expect(calls).toEqual(['Lisbon', 'Lisbon']);
    const last = received('claude-sonnet-4');
    const messages = last.messages as { role: string; content: { type: string }[] }[];
    expect(messages.map((m) => [m.role, m.content.map((b) => b.type)])).toEqual([
      ['user', ['text']],
      ['assistant', ['tool_use']],
      ['user', ['tool_result']],
    ]);
    expect(last.tool_choice).toEqual({ type: 'auto', disable_parallel_tool_use: true });
  });

  it('streams parallel tool-call deltas as OpenAI chunks, with usage', async () => {
    const stream = client.chat.completions.stream({
      model: 'claude-agent',
      messages: [{ role: 'user', content: `${weatherPrompt} get_weather and get_time` }],
      tools: [weather, time],
      stream_options: { include_usage: true },
    });
    const final = await stream.finalChatCompletion();
    const calls = final.choices[0].message.tool_calls as OpenAI.ChatCompletionMessageFunctionToolCall[];
    expect(calls.map((c) => [c.function.name, JSON.parse(c.function.arguments)])).toEqual([
      ['get_weather', { city: 'Lisbon', unit: 'celsius' }],
      ['get_time', { city: 'Lisbon' }],
    ]);
    expect(final.choices[0].finish_reason).toBe('tool_calls');
    expect(final.usage?.prompt_tokens).toBeGreaterThan(0);
    expect(final.usage?.completion_tokens).toBeGreaterThan(0);
  });

  it('images as base64 and URL blocks; JSON mode as an instruction, answered with JSON', async () => {
    const completion = await client.chat.completions.create({
      model: 'claude-agent',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Describe both pictures.' },
            { type: 'image_url', image_url: { url: `data:image/png;base64,${PIXEL}` } },
            { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg' } },
          ],
        },
      ],
      response_format: { type: 'json_object' },
    });
    expect(() => JSON.parse(completion.choices[0].message.content!)).not.toThrow();
    const upstream = received('claude-sonnet-4');
    expect((upstream.messages as { content: unknown }[])[0].content).toEqual([
      { type: 'text', text: 'Describe both pictures.' },
      { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PIXEL } },
      { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
    ]);
    expect(upstream.system).toContain('JSON');
  });

  it('refuses what cannot be translated with a 400 naming the field', async () => {
    for (const [field, extra] of [
      ['seed', { seed: 7 }],
      ['logprobs', { logprobs: true }],
      [
        'messages.0.content.1.type',
        {
          messages: [
            {
              role: 'user',
              content: [
                { type: 'text', text: 'hi' },
                { type: 'input_audio', input_audio: { data: 'AAAA', format: 'wav' } },
              ],
            },
          ],
        },
      ],
    ] as const) {
      const error = await client.chat.completions
        .create({
          model: 'claude-agent',
          messages: [{ role: 'user', content: 'hi' }],
          ...extra,
        } as OpenAI.ChatCompletionCreateParamsNonStreaming)
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OpenAI.BadRequestError);
      expect((error as Error).message).toContain(`${field}:`);
    }
    expect(sim.stats().requests).toBe(0);
  });
});

describe('tool calls through shadow and fallback', () => {
  it('a shadowed tool call is recorded and paired with the served one, never executed', async () => {
    await route({
      name: 'shadow-agent',
      blue: slot(t('openai', 'gpt-4o-mini')),
      green: slot(t('anthropic', 'claude-sonnet-4')),
      shadowRate: 1,
    });
    const { data, response } = await client.chat.completions
      .create({
        model: 'shadow-agent',
        messages: [{ role: 'user', content: weatherPrompt }],
        tools: [weather],
      })
      .withResponse();
    expect(data.choices[0].finish_reason).toBe('tool_calls');
    const requestId = response.headers.get('x-request-id')!;
    await until(async () => (await eventsOf(requestId)).length === 2, 3000);
    const [served, shadow] = await eventsOf(requestId);
    expect(served).toMatchObject({
      tag: 'stable',
      target: 'openai:gpt-4o-mini',
      finish_reason: 'tool_calls',
    });
    expect(shadow).toMatchObject({
      tag: 'shadow',
      target: 'anthropic:claude-sonnet-4',
      error_class: null,
      finish_reason: 'tool_calls',
      answer: '[tool call] get_weather({"city":"Lisbon","unit":"celsius"})',
    });
    expect(shadow.tool_calls).toEqual([
      expect.objectContaining({
        type: 'function',
        function: { name: 'get_weather', arguments: expect.any(String) },
      }),
    ]);
    await router.flush();
    const pairs = await db.pool.query(
      'SELECT stable_target, shadow_target FROM shadow_comparisons WHERE request_id = $1',
      [requestId],
    );
    expect(pairs.rows).toEqual([
      { stable_target: 'openai:gpt-4o-mini', shadow_target: 'anthropic:claude-sonnet-4' },
    ]);
    // The candidate got the caller's tools (translated) once; nothing ran them and nothing called it back.
    expect(sim.stats().byModel).toEqual({ 'gpt-4o-mini': 1, 'claude-sonnet-4': 1 });
    expect((received('claude-sonnet-4').tools as { name: string }[]).map((x) => x.name)).toEqual([
      'get_weather',
    ]);
  });

  it('a tool call answered by the fallback (streamed) when the primary is down', async () => {
    await route({
      name: 'fallback-agent',
      blue: slot(t('openai', 'down-4o'), t('anthropic', 'claude-sonnet-4')),
    });
    sim.setBehaviour('down-4o', { errorRate: 1, errorKinds: { server_error: 1 } });
    const stream = client.chat.completions.stream({
      model: 'fallback-agent',
      messages: [{ role: 'user', content: weatherPrompt }],
      tools: [weather],
    });
    const final = await stream.finalChatCompletion();
    expect(final.choices[0].message.tool_calls?.[0]).toMatchObject({ function: { name: 'get_weather' } });
    // 1 try + 2 retries of the 5xx, then the fallback.
    expect(sim.stats().byModel).toEqual({ 'down-4o': 3, 'claude-sonnet-4': 1 });
  });
});

describe('streams are bounded per silence, never per length; a hang-up is not the model failing', () => {
  it('a 60-second stream with a chunk every half second completes', { timeout: 90_000 }, async () => {
    await route({ name: 'long-stream', blue: slot(t('openai', 'slow-streamer')) });
    // ~120 chunks of 4 tokens, 500 ms apart: 60 s, 60x the 1 s gap limit and 20x the first-byte timeout.
    sim.setBehaviour('slow-streamer', { outputTokens: 480, streamChunkDelayMs: 500 });
    const started = performance.now();
    const stream = await client.chat.completions.create({
      model: 'long-stream',
      messages: [{ role: 'user', content: 'Tell me a long story about lighthouses.' }],
      stream: true,
    });
    let chunks = 0;
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      chunks++;
      finish ??= chunk.choices[0]?.finish_reason;
    }
    expect(performance.now() - started).toBeGreaterThan(55_000);
    expect(chunks).toBeGreaterThan(100);
    expect(finish).toBe('stop');
  });

  it('a stream that goes silent longer than the gap timeout fails with an error event', async () => {
    await route({ name: 'stalling', blue: slot(t('openai', 'stalls')) });
    sim.setBehaviour('stalls', { outputTokens: 200, streamChunkDelayMs: 50, streamStallAfterChunks: 3 });
    const { data: stream, response } = await client.chat.completions
      .create({
        model: 'stalling',
        messages: [{ role: 'user', content: 'Count slowly.' }],
        stream: true,
      })
      .withResponse();
    const started = performance.now();
    let text = '';
    const error = await (async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as Error).message).toMatch(/timeout|timed out/);
    expect(text.length).toBeGreaterThan(0);
    expect(performance.now() - started).toBeGreaterThan(900);
    expect(performance.now() - started).toBeLessThan(2500);
    const events = await eventsOf(response.headers.get('x-request-id')!);
    expect(events.map((e) => e.error_class)).toEqual(['timeout']);
  });

  it('a client hanging up a JSON request aborts the upstream call; the event says client_cancelled', async () => {
    await route({ name: 'slow-json', blue: slot(t('openai', 'slow-json')) });
    sim.setBehaviour('slow-json', { latencyMs: { median: 3000, p99: 3000 } });
    const abort = new AbortController();
    const requestId = `hangup-json-${Date.now()}`;
    setTimeout(() => abort.abort(), 300);
    const error = await client.chat.completions
      .create(
        { model: 'slow-json', messages: [{ role: 'user', content: 'Take your time.' }] },
        { signal: abort.signal, headers: { 'x-request-id': requestId } },
      )
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIUserAbortError);
    await until(() => sim.stats().aborted === 1, 2000);
    // The client's x-request-id is its own (for correlation); the event's request id is the gateway's.
    await until(async () => (await eventsOfClientId(requestId)).length === 1, 2000);
    expect((await eventsOfClientId(requestId))[0].error_class).toBe('client_cancelled');
    expect((await eventsOfClientId(requestId))[0].request_id).not.toBe(requestId);
  });

  it('a client hanging up a stream aborts the upstream call; the event says client_cancelled', async () => {
    await route({ name: 'slow-sse', blue: slot(t('openai', 'slow-sse')) });
    sim.setBehaviour('slow-sse', { outputTokens: 400, streamChunkDelayMs: 100 });
    const requestId = `hangup-sse-${Date.now()}`;
    const stream = await client.chat.completions.create(
      { model: 'slow-sse', messages: [{ role: 'user', content: 'Go on and on.' }], stream: true },
      { headers: { 'x-request-id': requestId } },
    );
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta?.content) break; // leaving the loop closes the connection
    }
    await until(() => sim.stats().aborted === 1, 2000);
    // The client's x-request-id is its own (for correlation); the event's request id is the gateway's.
    await until(async () => (await eventsOfClientId(requestId)).length === 1, 2000);
    expect((await eventsOfClientId(requestId))[0].error_class).toBe('client_cancelled');
    expect((await eventsOfClientId(requestId))[0].request_id).not.toBe(requestId);
  });
});

describe('retries before fallback', () => {
  it('429 with retry-after: 1, then success: one retry of the same target, no fallback', async () => {
    await route({ name: 'retry-once', blue: slot(t('openai', 'flaky-once'), t('openai', 'backup-a')) });
    sim.setBehaviour('flaky-once', { failFirst: 1, errorKinds: { rate_limit: 1 }, retryAfterSeconds: 1 });
    const started = performance.now();
    const { data, response } = await client.chat.completions
      .create({ model: 'retry-once', messages: [{ role: 'user', content: weatherPrompt }] })
      .withResponse();
    expect(performance.now() - started).toBeGreaterThan(950);
    expect(data.choices[0].message.content).toBeTruthy();
    expect(response.headers.get('x-rollout-target')).toBe('openai:flaky-once');
    expect(sim.stats().byModel).toEqual({ 'flaky-once': 2 });
  });

  it('429 forever: the retries are bounded, then the fallback answers', async () => {
    await route({ name: 'retry-forever', blue: slot(t('openai', 'always-429'), t('openai', 'backup-b')) });
    sim.setBehaviour('always-429', { errorRate: 1, errorKinds: { rate_limit: 1 }, retryAfterSeconds: 0 });
    const stream = await client.chat.completions
      .create({ model: 'retry-forever', messages: [{ role: 'user', content: weatherPrompt }], stream: true })
      .withResponse();
    let text = '';
    for await (const chunk of stream.data) text += chunk.choices[0]?.delta?.content ?? '';
    expect(text.length).toBeGreaterThan(0);
    expect(stream.response.headers.get('x-rollout-target')).toBe('openai:backup-b');
    // 1 try + 2 retries, then the fallback once.
    expect(sim.stats().byModel).toEqual({ 'always-429': 3, 'backup-b': 1 });
  });

  it('a 400 is not retried; context window exceeded goes to the larger-context fallback', async () => {
    await route({
      name: 'long-prompt',
      blue: slot(
        t('openai', 'small-window'),
        t('openai', 'also-small'),
        t('openai', 'big-window', { contextFallback: true }),
      ),
    });
    sim.setBehaviour('small-window', { contextWindowTokens: 100 });
    sim.setBehaviour('big-window', { contextWindowTokens: 100_000 });
    const longPrompt = `Summarize this: ${'the quick brown fox jumps over the lazy dog. '.repeat(60)}`;
    const { data, response } = await client.chat.completions
      .create({ model: 'long-prompt', messages: [{ role: 'user', content: longPrompt }] })
      .withResponse();
    expect(data.choices[0].message.content).toBeTruthy();
    expect(response.headers.get('x-rollout-target')).toBe('openai:big-window');
    // Not retried (a 400), and the ordinary fallback was skipped.
    expect(sim.stats().byModel).toEqual({ 'small-window': 1, 'big-window': 1 });

    // A short prompt never touches the larger-context model.
    const short = await client.chat.completions
      .create({ model: 'long-prompt', messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    expect(short.response.headers.get('x-rollout-target')).toBe('openai:small-window');

    // Without a larger-context fallback, the caller learns its prompt is too long (a 400, not a 502).
    await route({
      name: 'no-big-window',
      blue: slot(t('openai', 'small-window'), t('openai', 'also-small')),
    });
    const error = await client.chat.completions
      .create({ model: 'no-big-window', messages: [{ role: 'user', content: longPrompt }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('context_length_exceeded');
  });
});

async function until(cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const t0 = performance.now();
  for (;;) {
    if (await cond()) return;
    if (performance.now() - t0 > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
