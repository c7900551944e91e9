% rebase('layout', title='Extensions added')
% include('steps')
<h1>Extensions added</h1>
% include('provisioning')
<p><a href="/setup/done" role="button">Next: backup</a></p>
