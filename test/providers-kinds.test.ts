/**
 * Issue 20, providers as a registry: one descriptor per wire format (kinds/<kind>.ts: adapter, warm-up,
 * pricing hook), a catalog the dispatch, the router's warm-up and the providers file read, so nothing
 * else names a kind. Calls go through the real adapters to the simulator.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  PROVIDER_KINDS,
  createFallbackChain,
  createProviderAdapter,
  createProviderRegistry,
  kindDescriptor,
  simulatorProviders,
  type ProviderKindDescriptor,
} from '../src/data-plane/providers';
import { loaded } from '../src/data-plane/providers/sdk-modules';
import { parseProvidersFile } from '../src/data-plane/providers/providers-file';
import { startSimulator, type SimulatorHandle } from '../src/tooling/simulator';

const root = path.resolve(__dirname, '..');
const messages = [{ role: 'user' as const, content: 'Name one cloud type.' }];

let sim: SimulatorHandle;
beforeAll(async () => {
  sim = await startSimulator({ scenario: { default: { latencyMs: { median: 5 } } } });
});
afterAll(async () => {
  await sim?.close();
});

describe('the provider kinds catalog', () => {
  it('has one file per kind, named after it, and the router and dispatch name no kind', () => {
    const dir = path.join(root, 'src/data-plane/providers/kinds');
    const files = fs
      .readdirSync(dir)
      .filter((f) => !['index.ts', 'types.ts'].includes(f))
      .map((f) => f.replace(/\.ts$/, ''))
      .sort();
    expect(files).toEqual(Object.keys(PROVIDER_KINDS).sort());
    for (const [name, descriptor] of Object.entries(PROVIDER_KINDS)) expect(descriptor.kind).toBe(name);
    for (const file of ['src/data-plane/router/router.ts', 'src/data-plane/providers/provider-adapter.ts']) {
      const code = fs.readFileSync(path.join(root, file), 'utf8');
      expect(code, file).not.toMatch(/anthropic|openai-compatible'/i);
    }
  });

  it('a kind’s warm-up loads its SDK before any call', async () => {
    expect(loaded.anthropic).toBeUndefined();
    await kindDescriptor('anthropic')!.warm!('lean');
    expect(loaded.anthropic).toBeDefined();
  });

  it('the providers file takes the catalog’s kinds and names the others', () => {
    expect(parseProvidersFile('{"providers":{"x":{"kind":"anthropic"}}}')).toEqual({
      x: { kind: 'anthropic' },
    });
    expect(() => parseProvidersFile('{"providers":{"x":{"kind":"grpc"}}}')).toThrow(
      /providers\.x\.kind: "grpc" is not a provider kind: use one of .*openai-compatible.*anthropic/,
    );
  });

  it('a kind of one’s own (one descriptor) is dispatched to, and its pricing hook sets what calls cost', async () => {
    const sims = simulatorProviders(sim.url);
    const registry = createProviderRegistry({
      providers: { ...sims, discounted: { ...sims.openai, kind: 'openai-half-price' } },
      env: {},
    });
    const base = PROVIDER_KINDS['openai-compatible'];
    const halfPrice: ProviderKindDescriptor = {
      kind: 'openai-half-price',
      description: 'an OpenAI-compatible upstream billed at half the list price',
      createAdapter: base.createAdapter,
      pricing: (list) => ({
        priceOf: (model) => {
          const price = list.priceOf(model);
          return price && { inputPerMTok: price.inputPerMTok / 2, outputPerMTok: price.outputPerMTok / 2 };
        },
        cost: (model, usage) => {
          const listed = list.cost(model, usage);
          return { costUsd: listed.costUsd / 2, known: listed.known };
        },
      }),
    };
    const adapter = createProviderAdapter({
      registry,
      kinds: { ...PROVIDER_KINDS, [halfPrice.kind]: halfPrice },
    });
    const chain = createFallbackChain({ adapter, breaker: false, qualityCheck: false });
    try {
      const listed = await chain.complete([{ provider: 'openai', model: 'gpt-4o' }], messages);
      const billed = await chain.complete([{ provider: 'discounted', model: 'gpt-4o' }], messages);
      expect(billed.target.provider).toBe('discounted');
      // gpt-4o lists output at 4x the input price.
      const perToken = (r: typeof listed) => r.costUsd / (r.usage.inputTokens + 4 * r.usage.outputTokens);
      expect(listed.costKnown && billed.costKnown).toBe(true);
      expect(perToken(billed) / perToken(listed)).toBeCloseTo(0.5, 5);
      // A provider whose kind nothing describes fails as not_found, naming the kinds there are.
      const unknown = createProviderAdapter({
        registry: createProviderRegistry({ providers: { odd: { ...sims.openai, kind: 'carrier-pigeon' } } }),
      });
      const refused = await unknown
        .complete({ provider: 'odd', model: 'gpt-4o' }, messages)
        .catch((e: unknown) => e);
      expect(String(refused)).toMatch(
        /provider kind "carrier-pigeon" is not one of openai-compatible, anthropic/,
      );
      await unknown.close();
    } finally {
      await chain.close();
      await adapter.close();
    }
  });
});
