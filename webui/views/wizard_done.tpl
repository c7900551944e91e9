% rebase('layout', title='Backup')
% include('steps')
<h1>Keep a backup</h1>
<p>The box's whole configuration as one file (extensions with their SIP passwords, settings, IVR). Keep it somewhere safe: it restores the box with <code>linebox config import</code>.</p>
<p><a href="/backup.json" role="button" download>Download the backup</a></p>
<form method="post" action="/setup/finish">
<input type="hidden" name="csrf" value="{{csrf}}">
<button type="submit" class="secondary">Finish and go to the dashboard</button>
</form>
