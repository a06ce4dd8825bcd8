import type { Command } from 'commander';
import { untilInterrupted } from '../signals';

export function registerDevCommand(program: Command): void {
  program
    .command('dev')
    .description(
      'Run the whole local stack: Temporal, Postgres, migrations, worker and gateway; Ctrl-C stops it',
    )
    .option('--temporal-port <port>', 'Temporal frontend port when the dev server is started here', '7233')
    .option('--gateway-port <port>', 'port of the OpenAI-compatible gateway', '8080')
    .option('--simulator', 'start the provider simulator and send every provider to it (no API keys needed)')
    .action(async (opts: { temporalPort: string; gatewayPort: string; simulator?: boolean }) => {
      const { startDevStack } = await import('../../tooling/dev-stack');
      const stack = await startDevStack({
        temporalPort: Number(opts.temporalPort),
        gatewayPort: Number(opts.gatewayPort),
        simulator: opts.simulator === true,
        progress: (m) => console.log(m),
      });
      console.log('');
      console.log(`Gateway:     ${stack.gateway!.url}/v1   (model = route name)`);
      console.log(`Temporal:    ${stack.temporal.address}`);
      if (stack.temporal.uiUrl) console.log(`Temporal UI: ${stack.temporal.uiUrl}`);
      console.log(`Postgres:    ${stack.db.url}${stack.db.embedded ? ' (embedded)' : ''}`);
      if (stack.simulator) console.log(`Simulator:   ${stack.simulator.url}`);
      console.log('Press Ctrl-C to stop.');
      await untilInterrupted();
      await stack.stop();
    });
}
