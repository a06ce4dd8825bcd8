import type { Usage } from './types';

/**
 * Model prices in USD per million tokens. The defaults are list prices at the time of writing; a
 * deployment overrides them (negotiated rates, new models) through `createPricing(overrides)`.
 * An unknown model costs 0 and is flagged `known: false`, so cost metrics never crash and a dashboard
 * can show "cost unknown" instead of a silent zero.
 */
export interface ModelPrice {
  inputPerMTok: number;
  outputPerMTok: number;
}

export const DEFAULT_PRICES: Readonly<Record<string, ModelPrice>> = {
  'claude-opus-4': { inputPerMTok: 15, outputPerMTok: 75 },
  'claude-sonnet-4': { inputPerMTok: 3, outputPerMTok: 15 },
  'claude-haiku-4-5': { inputPerMTok: 1, outputPerMTok: 5 },
  'claude-3-5-haiku': { inputPerMTok: 0.8, outputPerMTok: 4 },
  'claude-haiku': { inputPerMTok: 0.8, outputPerMTok: 4 },
  'gpt-4o': { inputPerMTok: 2.5, outputPerMTok: 10 },
  'gpt-4o-mini': { inputPerMTok: 0.15, outputPerMTok: 0.6 },
  'gemini-2.5-pro': { inputPerMTok: 1.25, outputPerMTok: 10 },
  'gemini-2.5-flash': { inputPerMTok: 0.3, outputPerMTok: 2.5 },
  'deepseek-chat': { inputPerMTok: 0.27, outputPerMTok: 1.1 },
};

export interface CostEstimate {
  costUsd: number;
  /** False when the model has no price: `costUsd` is then 0, not a real figure. */
  known: boolean;
}

export interface Pricing {
  /** The price of `model`, or undefined when unknown. Cached per model name. */
  priceOf(model: string): ModelPrice | undefined;
  cost(model: string, usage: Usage): CostEstimate;
}

/**
 * Lookup order: exact name; the name without a vendor prefix (`anthropic/claude-sonnet-4` on
 * OpenRouter); the longest known name that is a prefix followed by `-`, `@` or `:` (dated snapshots such
 * as `claude-sonnet-4-20250514`, `gpt-4o-2024-08-06`).
 */
export function createPricing(overrides: Record<string, ModelPrice> = {}): Pricing {
  const table: Record<string, ModelPrice> = { ...DEFAULT_PRICES, ...overrides };
  const names = Object.keys(table).sort((a, b) => b.length - a.length);
  const cache = new Map<string, ModelPrice | null>();

  const lookup = (model: string): ModelPrice | null => {
    const exact = table[model];
    if (exact) return exact;
    const slash = model.lastIndexOf('/');
    const bare = slash >= 0 ? model.slice(slash + 1) : model;
    if (table[bare]) return table[bare];
    for (const name of names) {
      if (bare.length > name.length && bare.startsWith(name) && '-@:'.includes(bare[name.length]))
        return table[name];
    }
    return null;
  };

  const priceOf = (model: string): ModelPrice | undefined => {
    let price = cache.get(model);
    if (price === undefined) {
      price = lookup(model);
      cache.set(model, price);
    }
    return price ?? undefined;
  };

  return {
    priceOf,
    cost(model, usage) {
      const price = priceOf(model);
      if (!price) return { costUsd: 0, known: false };
      return {
        costUsd:
          (usage.inputTokens * price.inputPerMTok + usage.outputTokens * price.outputPerMTok) / 1_000_000,
        known: true,
      };
    },
  };
}

export const defaultPricing: Pricing = createPricing();
