import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ROOT } from '../helpers/cli-process';
import { parseCliArgs, readerOf } from '../helpers/deployment';

/**
 * docker-compose.yml, Prometheus's scrape config and Grafana's provisioning, read as Docker, Prometheus and
 * Grafana read them, and checked against the code: every command a container runs parses with the CLI's own
 * flags, every port a listener opens is the one its neighbours call, every variable is one the code reads.
 * (No Docker engine runs where this is developed: these files are written to the images' documented settings.)
 */
interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string | number>;
  ports?: (string | { host_ip?: string; published?: string | number })[];
  volumes?: string[];
  depends_on?: string[] | Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
}

const read = (file: string) => fs.readFileSync(path.join(ROOT, file), 'utf8');
// Docker Compose resolves YAML merge keys (`<<: *app`), which YAML 1.2 leaves to the reader.
const compose = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, Service> };
const services = compose.services;
const prometheus = parse(read('deploy/prometheus/prometheus.yml')) as {
  scrape_configs: { job_name: string; metrics_path: string; static_configs: { targets: string[] }[] }[];
};
const targetsOf = (job: string) =>
  prometheus.scrape_configs.find((c) => c.job_name === job)?.static_configs.flatMap((s) => s.targets) ?? [];

const APP_IMAGE = 'model-rollout:local';
const appServices = Object.entries(services).filter(([, s]) => s.image === APP_IMAGE);

/** The `model-rollout ...` invocations a service runs: its command (the image's entry point is the CLI), or
 * each `model-rollout` in a shell command. */
function invocations(service: Service): string[][] {
  if (service.entrypoint?.[0] === '/bin/sh')
    return (service.command ?? [])
      .join(' ')
      .split('&&')
      .map((part) => part.trim().split(/\s+/))
      .map((words) => {
        expect(words[0], `shell command "${words.join(' ')}"`).toBe('model-rollout');
        return words.slice(1);
      });
  expect(service.entrypoint, 'the image entry point is model-rollout').toBeUndefined();
  return [service.command ?? []];
}

function dependencies(service: Service): Record<string, string> {
  const d = service.depends_on ?? {};
  return Array.isArray(d)
    ? Object.fromEntries(d.map((name) => [name, 'service_started']))
    : Object.fromEntries(Object.entries(d).map(([name, v]) => [name, v.condition]));
}

describe('docker-compose', () => {
  it('publishes only the gateways beyond the machine; Temporal, its UI, Prometheus and Grafana on 127.0.0.1', () => {
    const published: Record<string, string[]> = {};
    for (const [name, service] of Object.entries(services))
      for (const port of service.ports ?? [])
        (published[name] ??= []).push(
          typeof port === 'string' ? port : `${port.host_ip ?? ''}:${String(port.published ?? '')}`,
        );
    expect(Object.keys(published).sort()).toEqual([
      'gateway-1',
      'gateway-2',
      'grafana',
      'prometheus',
      'temporal',
      'temporal-ui',
    ]);
    for (const [name, ports] of Object.entries(published)) {
      if (name.startsWith('gateway-')) continue;
      for (const port of ports) expect(port, `${name} publishes ${port}`).toMatch(/^127\.0\.0\.1:/);
    }
  });

  it("runs Temporal from today's images: temporalio/server with its schema from temporalio/admin-tools of the same version", () => {
    const images = Object.values(services).flatMap((s) => (s.image && !s.build ? [s.image] : []));
    expect(images.filter((i) => i.startsWith('temporalio/auto-setup'))).toEqual([]);
    const version = (image: string) => image.split(':')[1];
    const server = images.find((i) => i.startsWith('temporalio/server:'))!;
    const admin = images.filter((i) => i.startsWith('temporalio/admin-tools:'));
    expect(admin.length).toBeGreaterThan(0);
    for (const a of admin) expect(version(a)).toBe(version(server));
    // Every pulled image names its version: `latest` would change the stack under a user between two pulls.
    for (const image of images) expect(image, image).toMatch(/:[v\d][\w.-]*$/);
    expect(dependencies(services.temporal)).toEqual({ 'temporal-schema': 'service_completed_successfully' });
  });

  it('runs one worker, two gateways and the setup job, each with flags the CLI has', async () => {
    expect(appServices.map(([name]) => name).sort()).toEqual(['gateway-1', 'gateway-2', 'setup', 'worker']);
    const commands: string[] = [];
    for (const [, service] of appServices)
      for (const args of invocations(service)) commands.push((await parseCliArgs(args)).command.join(' '));
    expect(commands.sort()).toEqual(['gateway', 'gateway', 'migrate', 'temporal', 'worker']);
  });

  it('points Prometheus and the health checks at the ports the gateways and the worker listen on, on every interface', async () => {
    const gateways = appServices.filter(([name]) => name.startsWith('gateway-'));
    const gatewayTargets: string[] = [];
    for (const [name, service] of gateways) {
      const { options } = await parseCliArgs(invocations(service)[0]);
      expect(options).toMatchObject({ host: '0.0.0.0', adminHost: '0.0.0.0' });
      // The published port leads to the API port; the health check and Prometheus ask the admin port.
      for (const port of service.ports ?? []) expect(String(port).split(':').at(-1)).toBe(options.port);
      expect(service.healthcheck!.test.join(' ')).toContain(
        `http://127.0.0.1:${options.adminPort as string}/readyz`,
      );
      gatewayTargets.push(`${name}:${options.adminPort as string}`);
    }
    expect(targetsOf('model-rollout-gateway').sort()).toEqual(gatewayTargets.sort());
    const worker = await parseCliArgs(invocations(services.worker)[0]);
    expect(worker.options).toMatchObject({ metricsHost: '0.0.0.0', healthHost: '0.0.0.0' });
    expect(services.worker.healthcheck!.test.join(' ')).toContain(
      `http://127.0.0.1:${worker.options.healthPort as string}/readyz`,
    );
    expect(targetsOf('model-rollout-worker')).toEqual([`worker:${worker.options.metricsPort as string}`]);
    const temporalMetrics = String(services.temporal.environment!.PROMETHEUS_ENDPOINT);
    expect(temporalMetrics).toMatch(/^0\.0\.0\.0:\d+$/);
    expect(targetsOf('temporal-server')).toEqual([`temporal:${temporalMetrics.split(':')[1]}`]);
    for (const config of prometheus.scrape_configs) expect(config.metrics_path).toBe('/metrics');
    // The config Prometheus is told to read is the one mounted.
    const configFile = services.prometheus
      .command!.find((a) => a.startsWith('--config.file='))!
      .split('=')[1];
    expect(services.prometheus.volumes).toContain(`./deploy/prometheus/prometheus.yml:${configFile}:ro`);
  });

  it('sets only environment variables the code reads', () => {
    for (const [name, service] of appServices)
      for (const variable of Object.keys(service.environment ?? {}))
        expect(readerOf(variable), `${name}: ${variable}`).toBeDefined();
  });

  it('starts each piece after what it needs: Postgres, the Temporal schema, the namespace, the migrations', () => {
    for (const [name, service] of Object.entries(services))
      for (const [dependency, condition] of Object.entries(dependencies(service))) {
        expect(services[dependency], `${name} depends on ${dependency}`).toBeDefined();
        if (condition === 'service_healthy')
          expect(services[dependency].healthcheck, dependency).toBeDefined();
      }
    expect(dependencies(services.setup)).toEqual({
      'temporal-namespace': 'service_completed_successfully',
      postgres: 'service_healthy',
    });
    for (const name of ['worker', 'gateway-1', 'gateway-2'])
      expect(dependencies(services[name])).toEqual({ setup: 'service_completed_successfully' });
  });

  it('provisions Grafana with the dashboard and its data sources, Postgres read through a read-only role', () => {
    const grafana = services.grafana;
    const mount = (source: string) =>
      grafana.volumes!.find((v) => v.startsWith(`${source}:`))?.split(':')[1] ?? `${source} not mounted`;
    expect(mount('./deploy/grafana/provisioning')).toBe('/etc/grafana/provisioning');
    const providers = parse(read('deploy/grafana/provisioning/dashboards/model-rollout.yaml')) as {
      providers: { options: { path: string } }[];
    };
    expect(mount('./deploy/grafana/dashboards')).toBe(providers.providers[0].options.path);
    expect(String(grafana.environment!.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH)).toBe(
      `${providers.providers[0].options.path}/model-rollout.json`,
    );
    expect(fs.existsSync(path.join(ROOT, 'deploy/grafana/dashboards/model-rollout.json'))).toBe(true);

    const { datasources } = parse(read('deploy/grafana/provisioning/datasources/model-rollout.yaml')) as {
      datasources: {
        uid: string;
        type: string;
        url: string;
        user?: string;
        jsonData: { database?: string };
        secureJsonData?: { password: string };
      }[];
    };
    const prometheusSource = datasources.find((d) => d.type === 'prometheus')!;
    expect(prometheusSource.url).toBe('http://prometheus:9090');
    expect(services.prometheus.ports).toContain('127.0.0.1:9090:9090');
    const pg = datasources.find((d) => d.type === 'grafana-postgresql-datasource')!;
    expect(pg.url).toBe('postgres:5432');
    expect(pg.jsonData.database).toBe(services.postgres.environment!.POSTGRES_DB);
    // The role the init script creates, with the password both containers get from one variable.
    expect(read('deploy/postgres/initdb/10-grafana-reader.sql')).toContain(`CREATE ROLE ${pg.user} LOGIN`);
    const passwordVariable = /^\$\{?(\w+)\}?$/.exec(pg.secureJsonData!.password)![1];
    expect(grafana.environment![passwordVariable]).toBe(services.postgres.environment![passwordVariable]);
    expect(read('deploy/postgres/initdb/20-grafana-reader-password.sh')).toContain(`"$${passwordVariable}"`);
    expect(services.postgres.volumes).toContain('./deploy/postgres/initdb:/docker-entrypoint-initdb.d:ro');

    // The dashboard's data-source variables default to these data sources.
    const dashboard = JSON.parse(read('deploy/grafana/dashboards/model-rollout.json')) as {
      templating: { list: { type: string; query: string; current: { value?: string } }[] };
    };
    const defaults = dashboard.templating.list
      .filter((v) => v.type === 'datasource')
      .map((v) => ({ type: v.query, uid: v.current.value }));
    expect(defaults).toEqual(expect.arrayContaining(datasources.map((d) => ({ type: d.type, uid: d.uid }))));
    expect(defaults).toHaveLength(datasources.length);
  });
});
