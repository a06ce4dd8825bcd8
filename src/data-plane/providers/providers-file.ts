/**
 * The deployment's provider configuration: where each provider lives, which env var holds its key, and
 * which other endpoints a route or rollout spec may name for it. Read by the worker, the gateway and the CLI
 * (which validates routes and specs with it) from `MODEL_ROLLOUT_PROVIDERS_FILE`:
 *
 *   { "providers": {
 *       "openai": { "allowedBaseUrls": ["https://eu.api.openai.com/v1"] },
 *       "vllm":   { "kind": "openai-compatible", "baseUrl": "http://10.0.0.7:8000/v1", "requiresKey": false }
 *   } }
 *
 * Only this file and the environment (`<PROVIDER>_BASE_URL`, `<PROVIDER>_ALLOWED_BASE_URLS`) say where a
 * provider's key may go: a route or spec is data anyone who can start a rollout writes, so its `baseUrl` is
 * honoured only when it is on this list (see `registry.ts`).
 */
import fs from 'node:fs';
import { z } from 'zod';
import { kindDescriptor, providerKindNames } from './kinds';
import {
  createProviderRegistry,
  normalizeEndpoint,
  type ProviderConfig,
  type ProviderRegistry,
} from './registry';

const endpoint = z
  .string()
  .refine((u) => normalizeEndpoint(u) !== undefined, 'must be an http(s) URL without credentials or query');

const providerEntry = z.strictObject({
  kind: z
    .string()
    .refine((kind) => kindDescriptor(kind) !== undefined, {
      error: (issue) =>
        `"${String(issue.input)}" is not a provider kind: use one of ${providerKindNames().join(', ')}`,
    })
    .optional(),
  baseUrl: endpoint.optional(),
  apiKeyEnv: z
    .string()
    .regex(/^[A-Z_][A-Z0-9_]*$/, 'the NAME of the env var holding the key (e.g. OPENAI_API_KEY)')
    .optional(),
  requiresKey: z.boolean().optional(),
  allowedBaseUrls: z.array(endpoint).optional(),
});

const providersFile = z.strictObject({
  providers: z.record(
    z.string().regex(/^[a-z0-9][a-z0-9_.-]*$/, 'provider names are lowercase letters, digits, "-", "_", "."'),
    providerEntry,
  ),
});

export class ProvidersFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProvidersFileError';
  }
}

/** Parses a providers file's text; errors name the field and the reason. */
export function parseProvidersFile(
  text: string,
  source = 'providers file',
): Record<string, Partial<ProviderConfig>> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ProvidersFileError(`${source}: not valid JSON`);
  }
  const parsed = providersFile.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ProvidersFileError(
      `${source}: ${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`,
    );
  }
  return parsed.data.providers;
}

/** `MODEL_ROLLOUT_PROVIDERS_FILE`'s providers, or {} when it is unset. */
export function loadProvidersFile(
  env: NodeJS.ProcessEnv = process.env,
): Record<string, Partial<ProviderConfig>> {
  const file = env.MODEL_ROLLOUT_PROVIDERS_FILE;
  if (!file) return {};
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ProvidersFileError(
      `MODEL_ROLLOUT_PROVIDERS_FILE (${file}): cannot read it: ${(err as NodeJS.ErrnoException).code}`,
    );
  }
  return parseProvidersFile(text, `MODEL_ROLLOUT_PROVIDERS_FILE (${file})`);
}

/** The registry of this deployment: the providers file and the environment. */
export function deploymentRegistry(env: NodeJS.ProcessEnv = process.env): ProviderRegistry {
  return createProviderRegistry({ providers: loadProvidersFile(env), env });
}

/** A target as validation sees it (any of the config forms, after parsing). */
interface NamedTarget {
  provider: string;
  baseUrl?: string;
}

/**
 * Endpoint problems of the targets of a route or spec, as `{ field, reason }` (field ending in `.baseUrl`).
 * `targets` maps a field path (`blue.target`, `candidate.fallbacks[0]`, `evaluation.judge`) to its target.
 */
export function endpointIssues(
  registry: Pick<ProviderRegistry, 'endpointProblem'>,
  targets: Iterable<[string, NamedTarget | undefined]>,
): { field: string; reason: string }[] {
  const issues: { field: string; reason: string }[] = [];
  for (const [field, target] of targets) {
    if (!target) continue;
    const problem = registry.endpointProblem(target);
    if (problem) issues.push({ field: `${field}.baseUrl`, reason: problem });
  }
  return issues;
}

/** Every target a rollout spec names, by field: the candidate's chain, the judge, judge evaluators. */
export function specTargets(spec: {
  candidate: { target: NamedTarget; fallbacks: NamedTarget[] };
  evaluation?: { judge?: NamedTarget; evaluators?: readonly { kind: string; target?: NamedTarget }[] };
}): [string, NamedTarget | undefined][] {
  const out: [string, NamedTarget | undefined][] = [['candidate.target', spec.candidate.target]];
  spec.candidate.fallbacks.forEach((t, i) => out.push([`candidate.fallbacks[${i}]`, t]));
  out.push(['evaluation.judge', spec.evaluation?.judge]);
  spec.evaluation?.evaluators?.forEach((e, i) => {
    if (e.kind === 'judge') out.push([`evaluation.evaluators[${i}].target`, e.target]);
  });
  return out;
}

/** Every target of a slot config (`{ target, fallbacks }`) under `field`. */
export function slotTargets(
  field: string,
  slot: { target: NamedTarget; fallbacks: readonly NamedTarget[] } | null | undefined,
): [string, NamedTarget | undefined][] {
  if (!slot) return [];
  return [
    [`${field}.target`, slot.target],
    ...slot.fallbacks.map((t, i): [string, NamedTarget] => [`${field}.fallbacks[${i}]`, t]),
  ];
}
