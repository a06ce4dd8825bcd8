import { resolveBehaviour, type ResolvedBehaviour } from './behaviour';
import { createRandom, deriveSeed, type Random } from './random';
import { parseBehaviour, parseScenario, type ModelBehaviour, type Scenario } from './scenario';

export interface SimulatorStats {
  requests: number;
  byModel: Record<string, number>;
}

/**
 * The simulator's mutable state: the behaviour of each model (start scenario plus run-time changes),
 * the request counter that seeds each request's dice, and request statistics.
 */
export class SimulatorState {
  private readonly start: Scenario;
  private defaults: ModelBehaviour | undefined;
  private models = new Map<string, ModelBehaviour>();
  /** Resolved behaviours by model, dropped whenever a behaviour changes. */
  private resolved = new Map<string, ResolvedBehaviour>();
  private counter = 0;
  private requests = 0;
  private byModel = new Map<string, number>();

  constructor(scenario: Scenario = {}) {
    this.start = parseScenario(scenario);
    this.reset();
  }

  /** Back to the start scenario, with fresh statistics and the dice sequence from its beginning. */
  reset(): void {
    this.defaults = this.start.default;
    this.models = new Map(Object.entries(this.start.models ?? {}));
    this.resolved.clear();
    this.counter = 0;
    this.requests = 0;
    this.byModel.clear();
  }

  /** Replaces one model's behaviour (still layered over the scenario's default). Validated. */
  setBehaviour(model: string, behaviour: ModelBehaviour): void {
    this.models.set(model, parseBehaviour(behaviour, `behaviour of ${model}`));
    this.resolved.clear();
  }

  /** Unknown models behave like the scenario's default. */
  behaviourFor(model: string): ResolvedBehaviour {
    let behaviour = this.resolved.get(model);
    if (!behaviour) {
      behaviour = resolveBehaviour(this.defaults, this.models.get(model));
      this.resolved.set(model, behaviour);
    }
    return behaviour;
  }

  /**
   * The dice for the next request: seeded by scenario seed and request number when the scenario has a
   * seed (reproducible runs), unpredictable otherwise.
   */
  nextRandom(): Random {
    const n = this.counter++;
    const seed = this.start.seed;
    return createRandom(seed === undefined ? Math.floor(Math.random() * 2 ** 32) : deriveSeed(seed, n));
  }

  /** Counts every request to a chat endpoint, refused ones included (model unknown when unreadable). */
  recordRequest(model: string | undefined): void {
    this.requests += 1;
    if (model !== undefined) this.byModel.set(model, (this.byModel.get(model) ?? 0) + 1);
  }

  stats(): SimulatorStats {
    return { requests: this.requests, byModel: Object.fromEntries(this.byModel) };
  }

  /** The configured behaviours (not resolved), for `GET /admin/models`. */
  snapshot(): Scenario {
    return { seed: this.start.seed, default: this.defaults, models: Object.fromEntries(this.models) };
  }
}
