% rebase('layout', title='Backup')
% include('steps')
<h1>Keep a backup</h1>
<p>The whole box as one file: the configuration (extensions with their SIP passwords, settings, IVR) and the prompts.
Keep it somewhere safe: <a href="/system">System</a> → Restore puts it back. Encrypt it with a passphrase, so the file
alone gives nobody the SIP passwords.</p>
<form method="post" action="/setup/backup" id="backup-form">
<input type="hidden" name="csrf" value="{{csrf}}">
% include('backup_passphrase', errors=errors)
<button type="submit">Download the backup</button>
</form>
<form method="post" action="/setup/finish">
<input type="hidden" name="csrf" value="{{csrf}}">
<button type="submit" class="secondary">Finish and go to the dashboard</button>
</form>
