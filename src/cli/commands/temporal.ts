import type { Command } from 'commander';
import { UsageError } from '../errors';
import { untilInterrupted } from '../signals';

export function registerTemporalCommand(program: Command): void {
  program
    .command('temporal')
    .description('Start the Temporal dev server (building the CLI once if needed) and keep it running')
    .option('--port <port>', 'frontend gRPC port', '7233')
    .option('--ui-port <port>', 'Web UI port (default: port + 1000)')
    .option('--data-dir <dir>', 'folder for the SQLite state', '.data/temporal')
    .option('--install-only', 'only find or build the temporal CLI, print its path and exit')
    .option(
      '--register-only',
      'only register the search attributes on the server at TEMPORAL_ADDRESS and exit',
    )
    .action(
      async (opts: {
        port: string;
        uiPort?: string;
        dataDir: string;
        installOnly?: boolean;
        registerOnly?: boolean;
      }) => {
        const { registerSearchAttributes, startTemporal } =
          await import('../../control-plane/temporal/dev-server');
        const { ensureTemporalCli } = await import('../../control-plane/temporal/cli-binary');
        if (opts.registerOnly) {
          const { temporalSettings } = await import('../../control-plane/temporal/connection');
          const settings = temporalSettings();
          if (!settings.configuredAddress)
            throw new UsageError(
              '--register-only needs TEMPORAL_ADDRESS (or a TEMPORAL_PROFILE with an address)',
            );
          await registerSearchAttributes(settings);
          console.log(
            `search attributes registered on ${settings.address} (namespace ${settings.namespace})`,
          );
          return;
        }
        if (opts.installOnly) {
          const cli = await ensureTemporalCli((m) => console.log(m));
          console.log(
            cli ?? 'Go is not installed: the dev server will be downloaded by the Temporal SDK at start',
          );
          return;
        }
        const server = await startTemporal({
          port: Number(opts.port),
          uiPort: opts.uiPort ? Number(opts.uiPort) : undefined,
          dataDir: opts.dataDir,
          progress: (m) => console.log(m),
        });
        console.log(`Temporal:    ${server.address} (namespace ${server.namespace})`);
        if (server.uiUrl) console.log(`Temporal UI: ${server.uiUrl}`);
        if (!server.managed)
          console.log('(a Temporal address is configured: using that server, nothing to keep running)');
        else await untilInterrupted();
        await server.stop();
      },
    );
}
