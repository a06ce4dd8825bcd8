import type { Command } from 'commander';
import { startDevStack } from '../../dev-stack';
import { untilInterrupted } from '../signals';

export function registerDevCommand(program: Command): void {
  program
    .command('dev')
    .description('Run the whole local stack: Temporal, Postgres, migrations and a worker; Ctrl-C stops it')
    .option('--temporal-port <port>', 'Temporal frontend port when the dev server is started here', '7233')
    .action(async (opts: { temporalPort: string }) => {
      const stack = await startDevStack({ temporalPort: Number(opts.temporalPort), progress: (m) => console.log(m) });
      console.log('');
      console.log(`Temporal:    ${stack.temporal.address}`);
      if (stack.temporal.uiUrl) console.log(`Temporal UI: ${stack.temporal.uiUrl}`);
      console.log(`Postgres:    ${stack.db.url}${stack.db.embedded ? ' (embedded)' : ''}`);
      console.log('Press Ctrl-C to stop.');
      await untilInterrupted();
      await stack.stop();
    });
}
