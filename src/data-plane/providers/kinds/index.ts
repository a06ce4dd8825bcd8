import { anthropic } from './anthropic';
import { openaiCompatible } from './openai-compatible';
import type { ProviderKindDescriptor } from './types';

export type { KindAdapter, KindAdapterOptions, ProviderKindDescriptor } from './types';

/**
 * The CATALOG of wire formats: a new kind is one file in this folder (its descriptor, see types.ts) and
 * one line here. What reads it: the adapter dispatch (provider-adapter.ts), the router's warm-up, the
 * providers file's `kind` check.
 */
export const PROVIDER_KINDS: Readonly<Record<string, ProviderKindDescriptor>> = Object.freeze({
  [openaiCompatible.kind]: openaiCompatible,
  [anthropic.kind]: anthropic,
});

/** The kind when the catalog has it; undefined otherwise (callers say which field named it). */
export function kindDescriptor(kind: string): ProviderKindDescriptor | undefined {
  return Object.hasOwn(PROVIDER_KINDS, kind) ? PROVIDER_KINDS[kind] : undefined;
}

export const providerKindNames = (): string[] => Object.keys(PROVIDER_KINDS);
