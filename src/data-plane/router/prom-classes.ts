/**
 * prom-client's metric classes, without its index module: the index also loads the default process metrics
 * (and through them @opentelemetry/api), the cluster aggregator and the Pushgateway client, about 12 MB of
 * resident memory that a gateway never uses (measured: requiring the index adds 12.4 MB of RSS and 89
 * modules, these four files 0.5 MB and 9). The package has no `exports` map, so these files are reachable;
 * the index re-exports the same files, so a process that also loads it shares the classes.
 */
import { createRequire } from 'node:module';
import type * as PromClient from 'prom-client';

const load = createRequire(import.meta.url);

export const Registry = load('prom-client/lib/registry') as typeof PromClient.Registry;
export const Counter = load('prom-client/lib/counter') as typeof PromClient.Counter;
export const Gauge = load('prom-client/lib/gauge') as typeof PromClient.Gauge;
export const Histogram = load('prom-client/lib/histogram') as typeof PromClient.Histogram;

export type Registry = PromClient.Registry;
export type Counter<T extends string = string> = PromClient.Counter<T>;
export type Gauge<T extends string = string> = PromClient.Gauge<T>;
export type Histogram<T extends string = string> = PromClient.Histogram<T>;
// eslint-disable-next-line @typescript-eslint/no-namespace
export namespace Histogram {
  export type Internal<T extends string> = PromClient.Histogram.Internal<T>;
}
// eslint-disable-next-line @typescript-eslint/no-namespace
export namespace Counter {
  export type Internal = PromClient.Counter.Internal;
}
