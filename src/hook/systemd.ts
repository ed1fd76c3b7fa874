/**
 * systemd units that re-run the hook whenever the prefix's conda-meta/ changes (conda, mamba, `conda doctor
 * --fix`, anything) or a patched file is replaced (`micromamba self-update`): a .path unit and a oneshot .service, named from the prefix the way `systemd-escape
 * --path` names it.
 */
import { MambapatchError } from '../errors.js';
import { checkEmbeddablePath } from './quote.js';

export const DEFAULT_UNIT_DIR = '/etc/systemd/system';
const UNIT_NAME_MAX = 255;

/** `systemd-escape --path` (systemd's unit_name_path_escape): /opt/x-y → opt-x\x2dy, / → -. */
export function systemdEscapePath(p: string): string {
  const parts = p.split('/').filter((c) => c !== '' && c !== '.');
  if (parts.includes('..')) throw new MambapatchError('path is not normalized (contains ..)', { file: p });
  if (parts.length === 0) return '-';
  const bytes = Buffer.from(parts.join('/'), 'utf8');
  const hex = (b: number) => `\\x${b.toString(16).padStart(2, '0')}`;
  let out = '';
  bytes.forEach((b, i) => {
    const c = String.fromCharCode(b);
    if (i === 0 && c === '.') out += hex(b);
    else if (c === '/') out += '-';
    else if (/^[A-Za-z0-9:_.]$/.test(c)) out += c;
    else out += hex(b);
  });
  return out;
}

export interface UnitNames {
  path: string;
  service: string;
}

export function unitNames(prefix: string): UnitNames {
  const base = `mambapatch-${systemdEscapePath(prefix)}`;
  if (`${base}.service`.length > UNIT_NAME_MAX) {
    throw new MambapatchError(`prefix path too long for a systemd unit name (over ${UNIT_NAME_MAX} characters escaped)`, { file: prefix });
  }
  return { path: `${base}.path`, service: `${base}.service` };
}

/** A value for a unit file: % starts a specifier, so it is doubled. */
function unitValue(s: string): string {
  return s.replace(/%/g, '%%');
}

/** One ExecStart= argument: double-quoted, with \ " escaped, % and $ doubled. */
function execArg(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`).replace(/%/g, '%%').replace(/\$/g, '$$$$')}"`;
}

export interface UnitOptions {
  prefix: string;
  /** The hook script the service runs (<prefix>/.mambapatch/hook.sh). */
  hook: string;
  /** Run the hook as this uid (the owner of the mambapatch state); omitted for root. */
  uid?: number;
  /** ... and this gid (the prefix's group). */
  gid?: number;
  /**
   * The patched files (the watch list): each is watched too, because replacing one need not touch
   * conda-meta (`micromamba self-update`, an executable outside the prefix).
   */
  files?: string[];
}

export interface Units {
  names: UnitNames;
  pathUnit: string;
  serviceUnit: string;
}

export function renderUnits(o: UnitOptions): Units {
  checkEmbeddablePath(o.prefix, 'prefix');
  checkEmbeddablePath(o.hook, 'hook script');
  for (const f of o.files ?? []) checkEmbeddablePath(f, 'patched file');
  const names = unitNames(o.prefix);
  const condaMeta = `${o.prefix.replace(/\/+$/, '')}/conda-meta`;
  const pathUnit = [
    '# Written by mambapatch (`mambapatch hook install --systemd`); remove with `mambapatch hook uninstall --systemd`.',
    '[Unit]',
    `Description=mambapatch: re-apply the shared-prefix fix when ${unitValue(condaMeta)} changes`,
    '',
    '[Path]',
    `PathChanged=${unitValue(condaMeta)}`,
    ...(o.files ?? []).map((f) => `PathChanged=${unitValue(f)}`),
    `Unit=${names.service}`,
    '',
    '[Install]',
    'WantedBy=paths.target',
    '',
  ].join('\n');
  const serviceUnit = [
    '# Written by mambapatch (`mambapatch hook install --systemd`); remove with `mambapatch hook uninstall --systemd`.',
    '[Unit]',
    `Description=mambapatch: re-apply the shared-prefix fix to ${unitValue(o.prefix)}`,
    `ConditionPathExists=${unitValue(o.hook)}`,
    '',
    '[Service]',
    'Type=oneshot',
    `ExecStart=${execArg(o.hook)}`,
    ...(o.uid !== undefined && o.uid !== 0 ? [`User=${o.uid}`] : []),
    ...(o.gid !== undefined && o.uid !== undefined && o.uid !== 0 ? [`Group=${o.gid}`] : []),
    'UMask=0002',
    'Environment=MAMBAPATCH_NO_HOOK=1',
    '',
  ].join('\n');
  return { names, pathUnit, serviceUnit };
}
