// The data home of `ukcd` (and where its ukcd.yaml is looked for): UKC_HOME, else
// $XDG_DATA_HOME/ukc, else ~/.local/share/ukc.
import { join } from 'node:path';
import { homedir } from 'node:os';

export function ukcHome(env: NodeJS.ProcessEnv): string {
  if (env.UKC_HOME) return env.UKC_HOME;
  return join(env.XDG_DATA_HOME ?? join(env.HOME ?? homedir(), '.local', 'share'), 'ukc');
}
