% rebase('layout', title='System')
<link rel="stylesheet" href="/static/reports.css">
<h1>System</h1>
<section id="backup">
<h2>Backup</h2>
<p>One archive with the configuration (it holds the SIP secrets, which phones need back; voicemail
PINs only as salted hashes), the prompts ({{h.bytes(sizes['prompts'])}}) and, if you want them, the
recordings ({{h.bytes(sizes['recordings'])}}), with a manifest of every file's size and SHA-256.
With a passphrase the whole archive is encrypted.</p>
<form method="post" action="/system/backup" id="backup-form">
<input type="hidden" name="csrf" value="{{csrf}}">
<label for="recordings"><input type="checkbox" id="recordings" name="recordings" value="yes"> Include the recordings</label>
% include('backup_passphrase', errors=errors)
<button type="submit">Download backup</button>
</form>
</section>
<section id="restore">
<h2>Restore</h2>
<p>Replaces the configuration with the backup's and puts back its prompts and recordings (files of the same
name are replaced; others stay). The whole archive is checked first; a damaged or foreign file is refused and
nothing changes. Calls in progress are not cut.</p>
<form method="post" action="/system/restore" enctype="multipart/form-data" id="restore-form" novalidate>
<input type="hidden" name="csrf" value="{{csrf}}">
<label for="archive">Backup file
<input type="file" id="archive" name="archive" accept=".tar.gz,.tgz,.enc,application/gzip"{{!' aria-invalid="true" aria-describedby="archive-error"' if errors.get('archive') else ''}}>
% if errors.get('archive'):
<small id="archive-error" class="field-error refused">{{errors['archive']}}</small>
% end
</label>
% include('field', name='restore-passphrase', label='Passphrase (for an encrypted backup)', type='password', error=errors.get('restore-passphrase'), attrs='autocomplete="off"')
<button type="submit" class="danger">Restore</button>
</form>
</section>
<section id="logs">
<h2>Logs</h2>
<p><a href="/system/logs">The audit log, security events{{' and the box log' if log_file else ''}}, with a filter</a>.</p>
</section>
<section id="service">
<h2>Restart</h2>
<p class="muted">Every change here applies live, so nothing needs a restart, except settings read at start
(the analog board). Restarting hangs up the calls in progress; the box is back within seconds.</p>
<form method="post" action="/system/restart">
<input type="hidden" name="csrf" value="{{csrf}}">
<button type="submit" class="danger" id="restart">Restart the PBX service</button>
</form>
</section>
