import { ProviderError, registerSecretEnvName } from './errors';
import { createPricing, type ModelPrice, type Pricing } from './pricing';
import type { Target } from './types';

/**
 * Where each provider lives and which env var holds its key.
 *
 * - `kind` picks the wire format: `anthropic` (Messages API via `@anthropic-ai/sdk`) or
 *   `openai-compatible` (chat completions; OpenAI, Gemini's OpenAI endpoint, DeepSeek, OpenRouter, vLLM).
 * - Keys are read from the environment, by the provider's `apiKeyEnv`, at call time: never from
 *   workflow input, never stored in routing state, never logged, never put in an error.
 * - Base URLs come from deployment configuration only: config object (the providers file, see
 *   `providers-file.ts`) > env `<PROVIDER>_BASE_URL` > built-in default. A target's `baseUrl` (from a route or a
 *   rollout spec, which anyone who can start a rollout writes) is honoured only when it is that URL or one
 *   of the provider's `allowedBaseUrls` (config, or env `<PROVIDER>_ALLOWED_BASE_URLS`, comma-separated);
 *   any other is refused before a key is read, so a key never travels to a host the deployment did not name.
 *   The key env var name: config object > env `<PROVIDER>_API_KEY_ENV` > built-in default >
 *   `<PROVIDER>_API_KEY`. (Explicit config wins over the environment, which wins over defaults.)
 */
/**
 * The wire format: a kind in the catalog (`kinds/index.ts`; built in: `openai-compatible`, `anthropic`).
 * A string, not a union: a new kind is a file in `kinds/`, not an edit here.
 */
export type ProviderKind = string;

export interface ProviderConfig {
  kind: ProviderKind;
  baseUrl?: string;
  /** Name of the env var that holds the key (the name, not the value). */
  apiKeyEnv: string;
  /** False for keyless upstreams (a local vLLM). Default true. */
  requiresKey?: boolean;
  defaultHeaders?: Record<string, string>;
  /** Other endpoints a target may name as its `baseUrl` (e.g. a regional endpoint). */
  allowedBaseUrls?: string[];
  /**
   * A fixed, non-secret key for the simulator only (`sk-sim-...`). Real keys always come from the env.
   * @internal set by `simulatorProviders`.
   */
  simulatorKey?: string;
}

export const DEFAULT_PROVIDERS: Readonly<Record<string, ProviderConfig>> = {
  anthropic: { kind: 'anthropic', baseUrl: 'https://api.anthropic.com', apiKeyEnv: 'ANTHROPIC_API_KEY' },
  openai: { kind: 'openai-compatible', baseUrl: 'https://api.openai.com/v1', apiKeyEnv: 'OPENAI_API_KEY' },
  google: {
    kind: 'openai-compatible',
    baseUrl: 'https://generativelanguage.googleapis.com/v1beta/openai/',
    apiKeyEnv: 'GEMINI_API_KEY',
  },
  deepseek: { kind: 'openai-compatible', baseUrl: 'https://api.deepseek.com', apiKeyEnv: 'DEEPSEEK_API_KEY' },
  openrouter: {
    kind: 'openai-compatible',
    baseUrl: 'https://openrouter.ai/api/v1',
    apiKeyEnv: 'OPENROUTER_API_KEY',
  },
};

export interface RegistryOptions {
  /** Per-provider overrides and additional providers (any name; openai-compatible by default). */
  providers?: Record<string, Partial<ProviderConfig>>;
  /** Price overrides, merged over the defaults. */
  pricing?: Record<string, ModelPrice>;
  /** Where keys and env overrides are read from; default `process.env` (read at call time). */
  env?: NodeJS.ProcessEnv;
}

/** A provider as one call sees it. */
export interface ResolvedProvider {
  name: string;
  kind: ProviderKind;
  baseUrl: string;
  apiKeyEnv: string;
  requiresKey: boolean;
  defaultHeaders?: Record<string, string>;
}

export interface ProviderRegistry {
  readonly pricing: Pricing;
  /** Throws a non-retryable `ProviderError` when the provider cannot be called (no base URL). */
  resolve(target: Target): ResolvedProvider;
  /** The provider's config kind without resolving a base URL (for adapter dispatch). */
  kindOf(provider: string): ProviderKind;
  /**
   * The key for a call, read now. Missing → non-retryable `auth` error naming the env var to set.
   * Never log or return the value anywhere else.
   */
  apiKey(provider: ResolvedProvider, target: string): string;
  /** Problems that would make calls to this target fail, for config validation up front. */
  check(target: Target): string[];
  /**
   * Why a target's `baseUrl` is refused (it is neither the provider's configured URL nor on its allowlist),
   * or undefined when it has none or it is allowed. Needs no key: for validating routes and specs anywhere.
   */
  endpointProblem(target: Pick<Target, 'provider' | 'baseUrl'>): string | undefined;
  /** Names of all configured providers. */
  names(): string[];
}

export function envPrefix(provider: string): string {
  return provider.toUpperCase().replace(/[^A-Z0-9]+/g, '_');
}

export function createProviderRegistry(options: RegistryOptions = {}): ProviderRegistry {
  const env = options.env ?? process.env;
  const explicit = options.providers ?? {};
  const configs = new Map<string, Partial<ProviderConfig>>();
  for (const [name, config] of Object.entries(DEFAULT_PROVIDERS)) configs.set(name, config);
  for (const [name, config] of Object.entries(explicit))
    configs.set(name, { ...configs.get(name), ...config });
  for (const config of configs.values()) if (config.apiKeyEnv) registerSecretEnvName(config.apiKeyEnv);
  const pricing = createPricing(options.pricing);
  // Resolution is cached per (provider, target baseUrl); env overrides are read once per registry,
  // since they describe deployment topology. Keys are read per call.
  const resolved = new Map<string, ResolvedProvider | ProviderError>();
  const ownOf = (provider: string) => (Object.hasOwn(explicit, provider) ? explicit[provider] : undefined);
  /** The provider's own base URL: config object > env `<PROVIDER>_BASE_URL` > built-in default. */
  const configuredOf = (provider: string): string | undefined =>
    ownOf(provider)?.baseUrl ||
    env[`${envPrefix(provider)}_BASE_URL`] ||
    (Object.hasOwn(DEFAULT_PROVIDERS, provider) ? DEFAULT_PROVIDERS[provider].baseUrl : undefined);
  const allowedOf = (provider: string): string[] => {
    const own = ownOf(provider);
    const fromEnv = (env[`${envPrefix(provider)}_ALLOWED_BASE_URLS`] ?? '')
      .split(',')
      .map((u) => u.trim())
      .filter(Boolean);
    return [...(own?.allowedBaseUrls ?? []), ...fromEnv];
  };

  const resolveUncached = (
    provider: string,
    targetBaseUrl: string | undefined,
  ): ResolvedProvider | ProviderError => {
    const config = configs.get(provider) ?? {};
    const own = Object.hasOwn(explicit, provider) ? explicit[provider] : undefined;
    const builtIn = Object.hasOwn(DEFAULT_PROVIDERS, provider) ? DEFAULT_PROVIDERS[provider] : undefined;
    const prefix = envPrefix(provider);
    const apiKeyEnv =
      own?.apiKeyEnv || env[`${prefix}_API_KEY_ENV`] || builtIn?.apiKeyEnv || `${prefix}_API_KEY`;
    registerSecretEnvName(apiKeyEnv);
    const configured = configuredOf(provider);
    if (targetBaseUrl) {
      const problem = endpointProblemOf(provider, targetBaseUrl, configured, allowedOf(provider));
      if (problem)
        return new ProviderError({
          errorClass: 'not_found',
          target: provider,
          message: problem,
          retryable: false,
        });
    }
    const baseUrl = targetBaseUrl || configured;
    if (!baseUrl) {
      return new ProviderError({
        errorClass: 'not_found',
        target: provider,
        message: `provider "${provider}" has no base URL: configure providers.${provider}.baseUrl or set ${prefix}_BASE_URL`,
        retryable: false,
      });
    }
    return {
      name: provider,
      kind: config.kind ?? 'openai-compatible',
      baseUrl,
      apiKeyEnv,
      requiresKey: config.requiresKey ?? true,
      defaultHeaders: config.defaultHeaders,
    };
  };

  return {
    pricing,
    resolve(target) {
      const cacheKey = target.baseUrl ? `${target.provider}\u0000${target.baseUrl}` : target.provider;
      let entry = resolved.get(cacheKey);
      if (!entry) {
        entry = resolveUncached(target.provider, target.baseUrl);
        resolved.set(cacheKey, entry);
      }
      if (entry instanceof ProviderError) {
        throw new ProviderError({
          errorClass: entry.errorClass,
          target: `${target.provider}:${target.model}`,
          message: entry.detail,
          retryable: false,
        });
      }
      return entry;
    },
    kindOf(provider) {
      return configs.get(provider)?.kind ?? 'openai-compatible';
    },
    apiKey(provider, target) {
      const key = env[provider.apiKeyEnv];
      if (key) return key;
      const simulatorKey = configs.get(provider.name)?.simulatorKey;
      if (simulatorKey) return simulatorKey;
      if (!provider.requiresKey) return 'no-key';
      throw new ProviderError({
        errorClass: 'auth',
        target,
        message: `no API key for provider "${provider.name}": set the ${provider.apiKeyEnv} environment variable`,
        retryable: false,
      });
    },
    check(target) {
      const problems: string[] = [];
      const entry = resolveUncached(target.provider, target.baseUrl);
      if (entry instanceof ProviderError) problems.push(entry.detail);
      else if (entry.requiresKey && !env[entry.apiKeyEnv] && !configs.get(target.provider)?.simulatorKey) {
        problems.push(`${entry.apiKeyEnv} is not set`);
      }
      return problems;
    },
    endpointProblem(target) {
      if (!target.baseUrl) return undefined;
      return endpointProblemOf(
        target.provider,
        target.baseUrl,
        configuredOf(target.provider),
        allowedOf(target.provider),
      );
    },
    names() {
      return [...configs.keys()];
    },
  };
}

/** `scheme://host[:port]/path` without a trailing slash, or undefined for what is not an http(s) URL. */
export function normalizeEndpoint(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return undefined;
  if (parsed.username || parsed.password || parsed.search || parsed.hash) return undefined;
  return `${parsed.protocol}//${parsed.host}${parsed.pathname.replace(/\/+$/, '')}`;
}

/**
 * Why `baseUrl` may not be used for `provider`: the reason names the provider and the host asked for
 * (never a key, never the allowlist's own hosts, which are deployment details).
 */
function endpointProblemOf(
  provider: string,
  baseUrl: string,
  configured: string | undefined,
  allowed: readonly string[],
): string | undefined {
  const wanted = normalizeEndpoint(baseUrl);
  if (!wanted) return `baseUrl must be an http(s) URL without credentials, query or fragment`;
  const permitted = [configured, ...allowed].map((u) => (u ? normalizeEndpoint(u) : undefined));
  if (permitted.includes(wanted)) return undefined;
  const host = new URL(wanted).host;
  return `baseUrl ${host} is not an endpoint of provider "${provider}" in this deployment's configuration (the providers file's allowedBaseUrls or ${envPrefix(provider)}_ALLOWED_BASE_URLS); provider keys go only to configured endpoints`;
}

export interface SimulatorProvidersOptions {
  /**
   * 'fake' (default): every provider gets a fixed `sk-sim-<provider>` key, env keys ignored unless set.
   * 'env': keys must come from the env as for real providers (tests of key handling use this).
   */
  keys?: 'fake' | 'env';
  /** Extra provider names to point at the simulator (all openai-compatible). */
  extraProviders?: string[];
}

/**
 * Provider config that points every provider at a simulator started with `startSimulator()`:
 * Anthropic at `url`, the OpenAI-compatible ones at `url + '/v1'`. Use the result as
 * `createProviderRegistry({ providers: simulatorProviders(sim.url) })`. For tests, the demo and dev mode.
 */
export function simulatorProviders(
  url: string,
  options: SimulatorProvidersOptions = {},
): Record<string, Partial<ProviderConfig>> {
  const root = url.replace(/\/+$/, '');
  const names = [...Object.keys(DEFAULT_PROVIDERS), ...(options.extraProviders ?? [])];
  const out: Record<string, Partial<ProviderConfig>> = {};
  for (const name of names) {
    const kind = DEFAULT_PROVIDERS[name]?.kind ?? 'openai-compatible';
    out[name] = {
      kind,
      baseUrl: kind === 'anthropic' ? root : `${root}/v1`,
      ...(options.keys === 'env' ? {} : { simulatorKey: `sk-sim-${name}` }),
    };
  }
  return out;
}

/**
 * A registry on the simulator. With fake keys it reads nothing from the env (`env: {}`), so a real
 * key in the developer's environment is never sent to the simulator.
 */
export function simulatorRegistry(
  url: string,
  options: SimulatorProvidersOptions & { pricing?: Record<string, ModelPrice>; env?: NodeJS.ProcessEnv } = {},
): ProviderRegistry {
  return createProviderRegistry({
    providers: simulatorProviders(url, options),
    pricing: options.pricing,
    env: options.env ?? (options.keys === 'env' ? process.env : {}),
  });
}
