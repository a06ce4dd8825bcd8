import type { IncomingMessage, ServerResponse } from 'node:http';
import { writeChunk } from '../../data-plane/gateway/write-chunk';
import { logger } from '../../logger';
import { composeAnswer } from './answers';
import { judgeReply } from './judge';
import { planRequest, type RequestPlan, type ResolvedBehaviour } from './behaviour';
import { BodyError, connectionSignal, dropConnection, readJsonBody, send, sleep } from './http';
import { findQuestionByPrompt } from '../../decision/scoring/reference-set/questions';
import { answerFromToolResults, exampleOf, plannedToolCalls } from './tools';
import type { Random } from './random';
import type { SimulatorState } from './state';
import { chunkTokens, countPromptTokens, tokenize } from './tokens';
import { isRecord, type ChatReply, type ChatRequest, type RefusalKind, type WireFormat } from './wire/format';

/**
 * Acts out one chat completion request: roll the dice, wait the sampled latency, then either fail the
 * way the dice said or answer, in JSON or as a stream, in the request's wire format.
 */

/** A `timeout` holds the request at most this long, then drops it (clients normally give up first). */
const TIMEOUT_HOLD_MS = 120_000;
/** A `drop_mid_stream` sends this many deltas before cutting the connection. */
const DELTAS_BEFORE_DROP = 2;

const REFUSAL_MESSAGES: Record<RefusalKind, string> = {
  rate_limit: 'Rate limit reached for requests (simulated). Please retry after a short wait.',
  server_error: 'The server had an error while processing your request (simulated).',
  overloaded: 'The model is overloaded (simulated). Please try again later.',
  bad_request: 'Invalid request (simulated).',
  unsupported_parameter: "Unsupported parameter: 'temperature' is not supported with this model (simulated).",
  auth: 'Invalid API key (simulated).',
  context_length: '',
};

export async function handleCompletion(
  req: IncomingMessage,
  res: ServerResponse,
  wire: WireFormat,
  state: SimulatorState,
): Promise<void> {
  let body: unknown;
  try {
    body = await readJsonBody(req);
  } catch (error) {
    if (!(error instanceof BodyError)) throw error;
    state.recordRequest(undefined);
    return refuse(res, wire, 'bad_request', error.message, 0, error.status);
  }
  const requestNumber = state.recordRequest(
    isRecord(body) && typeof body.model === 'string' ? body.model : undefined,
    { wire: wire.name, body },
  );

  // Any key is accepted, but there must be one, as with a real provider. The key is never read further.
  if (!hasApiKey(req)) {
    return refuse(res, wire, 'auth', 'Missing API key: send an Authorization: Bearer header or x-api-key.');
  }
  const parsed = wire.parseRequest(body);
  if (!parsed.ok) return refuse(res, wire, 'bad_request', parsed.reason);

  const { request } = parsed;
  const behaviour = state.behaviourFor(request.model);
  const random = state.nextRandom();
  const plan = planRequest(behaviour, random, requestNumber);
  const signal = connectionSignal(res);
  res.once('close', () => {
    if (!res.writableFinished && plan.error !== 'timeout' && plan.error !== 'drop_mid_stream')
      state.recordAbort();
  });
  logger.debug(
    { wire: wire.name, model: request.model, error: plan.error, latencyMs: plan.latencyMs },
    'simulated request',
  );

  if (plan.error === 'timeout') {
    // Never answer; the connection's close clears the timer, so abandoned requests leave nothing behind.
    if (await sleep(TIMEOUT_HOLD_MS, signal)) dropConnection(res);
    return;
  }
  if (!(await sleep(plan.latencyMs, signal))) return;
  const promptTokens = countPromptTokens(request.texts) + IMAGE_TOKENS * request.images;
  if (behaviour.contextWindowTokens !== undefined && promptTokens > behaviour.contextWindowTokens) {
    // The wording each provider uses (and the gateway recognizes): OpenAI's code, Anthropic's message.
    const message =
      wire.name === 'openai'
        ? `This model's maximum context length is ${behaviour.contextWindowTokens} tokens. However, your messages resulted in ${promptTokens} tokens.`
        : `prompt is too long: ${promptTokens} tokens > ${behaviour.contextWindowTokens} maximum`;
    return refuse(res, wire, 'context_length', message);
  }

  switch (plan.error) {
    case 'rate_limit':
    case 'server_error':
    case 'overloaded':
    case 'bad_request':
    case 'unsupported_parameter':
    case 'auth':
      return refuse(res, wire, plan.error, REFUSAL_MESSAGES[plan.error], behaviour.retryAfterSeconds);
    case 'drop_mid_stream':
      if (!request.stream) return dropConnection(res);
      break;
  }

  const { reply, tokens } = buildReply(request, plan, behaviour, random);
  const headers = { [wire.requestIdHeader]: `req_${reply.id}` };
  if (!request.stream) {
    const json = wire.responseBody(reply);
    // `malformed`: a 200 whose JSON stops halfway, as from a proxy that cut the body short.
    const text = plan.error === 'malformed' ? json.slice(0, Math.floor(json.length / 2)) : json;
    return send(res, 200, text, { ...headers, 'content-type': 'application/json' });
  }
  await streamReply(res, wire, { reply, tokens, request, behaviour, plan, headers, signal });
}

/** What an image costs in prompt tokens (OpenAI's low-detail price). */
const IMAGE_TOKENS = 85;

function buildReply(
  request: ChatRequest,
  plan: RequestPlan,
  behaviour: ResolvedBehaviour,
  random: Random,
): { reply: ChatReply; tokens: string[] } {
  const id = nextResponseId();
  const inputTokens = countPromptTokens(request.texts) + IMAGE_TOKENS * request.images;
  let toolSerial = 0;
  const toolCalls = plannedToolCalls(request, () => `call_${id}_${toolSerial++}`);
  if (toolCalls) {
    const outputTokens = toolCalls.reduce((sum, call) => sum + tokenize(call.arguments).length + 4, 0);
    return {
      tokens: [],
      reply: {
        id,
        model: request.model,
        created: Math.floor(Date.now() / 1000),
        text: '',
        truncated: false,
        inputTokens,
        outputTokens,
        toolCalls,
      },
    };
  }
  const question = findQuestionByPrompt(request.lastUserText.trim());
  let text =
    request.toolResults.length > 0
      ? answerFromToolResults(request.toolResults)
      : request.jsonSchema !== undefined
        ? JSON.stringify(exampleOf(request.jsonSchema, request.lastUserText))
        : (judgeReply(request.lastUserText, plan.correct, random) ??
          composeAnswer(
            {
              question,
              prompt: request.lastUserText,
              correct: plan.correct,
              json: request.json,
              outputTokens: behaviour.outputTokens,
            },
            random,
          ));
  if (request.images > 0 && !request.json)
    text = `I see ${request.images === 1 ? 'an image' : `${request.images} images`}. ${text}`;
  // Stop sequences: the answer ends before the first one (which is not part of it).
  let stopped = false;
  for (const stop of request.stop) {
    const at = text.indexOf(stop);
    if (at >= 0) {
      text = text.slice(0, at);
      stopped = true;
    }
  }
  const allTokens = tokenize(text);
  const truncated = request.maxTokens !== undefined && allTokens.length > request.maxTokens;
  const tokens = truncated ? allTokens.slice(0, request.maxTokens) : allTokens;
  return {
    tokens,
    reply: {
      id,
      model: request.model,
      created: Math.floor(Date.now() / 1000),
      text: truncated ? tokens.join('') : text,
      truncated,
      stopped,
      inputTokens,
      outputTokens: tokens.length,
    },
  };
}

let responseSerial = 0;

/** Unique within the process, across simulators and resets (a random suffix keeps processes apart). */
function nextResponseId(): string {
  responseSerial += 1;
  return `sim${responseSerial.toString(36)}${Math.floor(Math.random() * 36 ** 4).toString(36)}`;
}

interface StreamContext {
  reply: ChatReply;
  tokens: string[];
  request: ChatRequest;
  behaviour: ResolvedBehaviour;
  plan: RequestPlan;
  headers: Record<string, string>;
  signal: AbortSignal;
}

async function streamReply(res: ServerResponse, wire: WireFormat, context: StreamContext): Promise<void> {
  const { reply, tokens, request, behaviour, plan, headers, signal } = context;
  const deltas = reply.toolCalls
    ? wire.streamToolCalls(reply)
    : chunkTokens(tokens).map((text) => wire.streamDelta(reply, text));
  res.writeHead(200, { ...headers, 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });

  if (plan.error === 'malformed') {
    res.end(wire.streamHead(reply) + deltas.slice(0, 1).join('') + wire.streamBroken(reply));
    return;
  }
  if (plan.error === 'drop_mid_stream') {
    const partial = wire.streamHead(reply) + deltas.slice(0, DELTAS_BEFORE_DROP).join('');
    // Destroy only once the deltas have reached the socket, so the client really sees some text first.
    res.write(partial, () => dropConnection(res));
    return;
  }

  const tail = wire.streamTail(reply, request.includeUsage);
  if (behaviour.streamChunkDelayMs <= 0 && behaviour.streamStallAfterChunks === undefined) {
    // Nothing to wait for between events: one write, the client still parses separate events.
    res.end(wire.streamHead(reply) + deltas.join('') + tail);
    return;
  }
  await writeChunk(res, wire.streamHead(reply), signal);
  for (const [index, delta] of deltas.entries()) {
    if (index === behaviour.streamStallAfterChunks) {
      // A stalled upstream: silence on an open connection, until the client gives up.
      if (await sleep(TIMEOUT_HOLD_MS, signal)) dropConnection(res);
      return;
    }
    if (!(await sleep(behaviour.streamChunkDelayMs, signal))) return;
    await writeChunk(res, delta, signal);
  }
  if (!signal.aborted) res.end(tail);
}

function refuse(
  res: ServerResponse,
  wire: WireFormat,
  kind: RefusalKind,
  message: string,
  retryAfterSeconds = 0,
  status?: number,
): void {
  const response = wire.refusal(kind, message, retryAfterSeconds);
  send(res, status ?? response.status, response.body, response.headers);
}

function hasApiKey(req: IncomingMessage): boolean {
  const authorization = req.headers.authorization;
  if (authorization && /^Bearer\s+\S/i.test(authorization)) return true;
  const apiKey = req.headers['x-api-key'];
  return typeof apiKey === 'string' && apiKey.trim() !== '';
}
