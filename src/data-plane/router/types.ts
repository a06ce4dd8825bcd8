import type { CallerSignal, ChatMessage, ChatRequest, Target, TargetParams } from '../providers';
import type { SlotName } from '../../store/routing-state';

/*
 * The router's request and decision types, apart from router.ts so that the modules the router uses
 * (shadow.ts) can name them without importing the router back.
 */

export interface RouterRequest {
  /** The conversation as text (what is captured and shown to judges); the whole request is `openai`. */
  messages: ChatMessage[];
  /**
   * The caller's OpenAI chat-completions body (and its bytes): forwarded as written to OpenAI-compatible
   * targets, translated for Anthropic ones. Absent for in-process callers that only have `messages`.
   */
  openai?: ChatRequest;
  /** Routing key (user id): makes the canary assignment sticky. Absent: assigned per request. */
  key?: string;
  /**
   * In-process callers' parameters; the target's own params (set by the rollout) take precedence. (A
   * gateway caller's fields are in `openai` instead, and there the caller's fields win over the target's.)
   */
  params?: TargetParams;
  /** The request's id; generated when absent. The gateway always generates it (clients cannot choose it). */
  requestId?: string;
  /** The id the client sent (`x-request-id`), recorded beside the event for the client's correlation only. */
  clientRequestId?: string;
  /** Who is calling: the gateway API key's name, recorded as the event's actor. */
  caller?: string;
  /** Question id when a reference answer exists (reference grading). */
  referenceId?: string;
  /** Aborts the call (client went away). */
  signal?: CallerSignal;
}

export type ServedTag = 'stable' | 'canary';

/** What was decided before any provider was called. */
export interface RouteDecision {
  route: string;
  requestId: string;
  tag: ServedTag;
  slot: SlotName;
  routingVersion: number;
  /** The chain this request walks: the slot's target, then its fallbacks. */
  targets: readonly Target[];
}
