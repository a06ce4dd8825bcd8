import type { Pricing } from '../pricing';
import type { ProviderRegistry } from '../registry';
import type { ProviderAdapter } from '../types';

/**
 * One wire format a provider can speak (`kind` in a provider's config): everything the data plane needs
 * to call its providers, in one file per kind (`kinds/<kind>.ts`), listed in the catalog (`kinds/index.ts`).
 * Nothing outside the kind's file names the kind: the adapter dispatch, the router's warm-up and the
 * providers file's schema read the catalog.
 *
 * Error mapping: each kind's adapter turns what its transport threw into `ProviderError`s itself (through
 * `normalizeError`, which reads HTTP status and error bodies the same way for every kind).
 */
export interface ProviderKindDescriptor {
  /** The name in a provider's config (`"kind": "<name>"`). */
  readonly kind: string;
  /** One line for docs and errors: what speaks it. */
  readonly description: string;
  /** The adapter for every provider of this kind. */
  createAdapter(options: KindAdapterOptions): KindAdapter;
  /**
   * Loads what the first call would otherwise wait for (an SDK), as soon as a route names a target of
   * this kind (its callers ignore a rejection: the first call reports a real failure).
   */
  warm?(transport: 'lean' | 'sdk'): Promise<unknown>;
  /**
   * Pricing hook: the price table this kind's calls are charged from, given the registry's (default: the
   * registry's own). For a kind whose bills differ from its listed prices (cached input, batch discounts).
   */
  pricing?(registryPricing: Pricing): Pricing;
}

export interface KindAdapterOptions {
  registry: ProviderRegistry;
  /** OpenAI-compatible kinds: the lean undici transport (default) or the `openai` SDK. */
  transport: 'lean' | 'sdk';
  defaultTimeoutMs?: number;
}

export interface KindAdapter extends ProviderAdapter {
  /** Releases pooled connections, when the adapter holds any. */
  close?(): Promise<void>;
}
