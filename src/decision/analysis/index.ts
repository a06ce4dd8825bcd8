export * from './check';
export * from './condition';
export * from './placeholders';
export * from './tally';
export { readJsonPath, asNumber } from './json-path';
