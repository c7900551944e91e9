% rebase('layout', title='Audit log')
<h1>Audit log</h1>
<p>Every configuration change and login made through the web admin, newest first.</p>
<div class="scroll">
<table id="audit">
<thead><tr><th>When</th><th>Who</th><th>From</th><th>What</th></tr></thead>
<tbody>
% for e in entries:
<tr><td>{{h.when(e['at'])}}</td><td>{{e['who']}}</td><td>{{e['ip']}}</td><td>{{e['what']}}</td></tr>
% end
% if not entries:
<tr><td colspan="4">Nothing yet.</td></tr>
% end
</tbody>
</table>
</div>
