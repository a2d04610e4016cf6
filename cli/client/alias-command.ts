// coffer alias set NAME URL ACCESS SECRET [--region R]
// coffer alias ls [NAME]
// coffer alias rm NAME
//
// The config file and MC_HOST_* handling live in alias.ts. `alias set` stores the alias without contacting the
// server (so aliases can be prepared offline); the first command against it shows whether the keys work.

import { allAliases, configPath, isValidAliasName, normalizeEndpointUrl, removeAlias, setAlias } from './alias.ts';
import { CommandError, setUpCommand, UsageError } from './common.ts';

export const aliasUsage = `usage: coffer alias set NAME URL ACCESS-KEY SECRET-KEY [--region REGION]
       coffer alias ls [NAME]
       coffer alias rm NAME
  (each takes --json; the file is \${COFFER_CONFIG_DIR:-~/.coffer}/config.json, MC_HOST_NAME=https://KEY:SECRET@HOST also works)`;

export async function runAlias(args: readonly string[]): Promise<number> {
  const setup = await setUpCommand(args, { region: { type: 'string' } }, aliasUsage);
  if (setup === undefined) return 0;
  const { values, positionals, ctx } = setup;
  const [subcommand, ...rest] = positionals;
  switch (subcommand) {
    case 'set':
    case 'add': {
      if (rest.length !== 4) throw new UsageError('alias set takes NAME URL ACCESS-KEY SECRET-KEY');
      const [name, url, accessKey, secretKey] = rest as [string, string, string, string];
      if (!isValidAliasName(name)) throw new UsageError(`invalid alias name '${name}' (a letter, then letters, digits, '-' or '_')`);
      if (accessKey === '' || secretKey === '') throw new UsageError('the access key and secret key must not be empty');
      const endpoint = normalizeEndpointUrl(url);
      await setAlias(name, { url: endpoint, accessKey, secretKey, ...(values.region === undefined ? {} : { region: values.region }) });
      ctx.out.line(`Added \`${name}\` successfully.`);
      ctx.out.json({ status: 'success', alias: name, URL: endpoint, accessKey, api: 's3v4', path: 'auto', config: configPath() });
      return 0;
    }
    case 'ls':
    case 'list': {
      if (rest.length > 1) throw new UsageError('alias ls takes at most one NAME');
      const aliases = await allAliases();
      const names = rest.length === 1 ? rest : [...aliases.keys()].sort();
      for (const name of names) {
        const alias = aliases.get(name);
        if (alias === undefined) throw new CommandError(`no alias '${name}'`, 'NoSuchAlias');
        const source = alias.source === 'env' ? ' (from the environment)' : '';
        ctx.out.line(`${name}${source}`);
        ctx.out.line(`  URL       : ${alias.url}`);
        ctx.out.line(`  AccessKey : ${alias.accessKey}`);
        ctx.out.line(`  SecretKey : ${alias.secretKey}`);
        ctx.out.line(`  API       : ${alias.api}`);
        ctx.out.line(`  Path      : ${alias.path}`);
        if (alias.region !== undefined) ctx.out.line(`  Region    : ${alias.region}`);
        ctx.out.line('');
        ctx.out.json({
          status: 'success', alias: name, URL: alias.url, accessKey: alias.accessKey, secretKey: alias.secretKey, api: alias.api, path: alias.path,
          ...(alias.region === undefined ? {} : { region: alias.region }), source: alias.source,
        });
      }
      return 0;
    }
    case 'rm':
    case 'remove': {
      if (rest.length !== 1) throw new UsageError('alias rm takes NAME');
      const name = rest[0]!;
      if (!(await removeAlias(name))) throw new CommandError(`no alias '${name}' in ${configPath()}`, 'NoSuchAlias');
      ctx.out.line(`Removed \`${name}\` successfully.`);
      ctx.out.json({ status: 'success', alias: name });
      return 0;
    }
    default:
      throw new UsageError(subcommand === undefined ? 'alias needs set, ls or rm' : `unknown alias subcommand '${subcommand}'`);
  }
}
