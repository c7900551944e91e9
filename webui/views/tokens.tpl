% rebase('layout', title='API tokens')
<link rel="stylesheet" href="/static/reports.css">
<h1>API tokens</h1>
<p>Scripts and other systems use the REST API under <code>/api/v1</code> (described by
<a href="https://spec.openapis.org/oas/v3.1.0">OpenAPI 3.1</a> in <code>docs/openapi.json</code>) with a token:
<code>Authorization: Bearer lbx_...</code>. A token can do everything the API offers; revoke the ones you no longer use.</p>
% if get('made'):
<article id="new-token">
<p>Token <strong>{{made['token'].name}}</strong>:</p>
<p><code class="api-token" id="token-secret">{{made['secret']}}</code></p>
<p class="muted">Only its SHA-256 is kept, so this page is the only time it can be read. Try it:
<code>curl -H "Authorization: Bearer {{made['secret'][:10]}}..." {{base}}/api/v1/extensions</code></p>
</article>
% end
<form method="post" action="/tokens" novalidate class="add" id="token-form">
<input type="hidden" name="csrf" value="{{csrf}}">
<fieldset class="row">
% include('field', name='name', label='Name (what uses it)', value=form.get('name', ''), error=errors.get('name'), attrs='placeholder="crm-sync" maxlength="40"')
</fieldset>
<button type="submit">Create token</button>
</form>
<div class="scroll">
<table id="tokens">
<thead><tr><th>Name</th><th>Starts with</th><th class="opt">Created</th><th>Last used</th><th></th></tr></thead>
<tbody>
% for t in tokens:
<tr data-token="{{t.id}}"{{!' class="muted"' if t.revoked else ''}}><td>{{t.name}}</td><td><code>{{t.shown}}…</code></td><td class="opt">{{h.when(t.created)}}</td>
<td>{{h.when(t.last_used) if t.last_used else 'never'}}</td>
<td class="actions">
% if t.revoked:
revoked {{h.when(t.revoked)}}
% else:
<form method="post" action="/tokens/{{t.id}}/revoke" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="danger small">Revoke</button></form>
% end
</td></tr>
% end
% if not tokens:
<tr><td colspan="5">No tokens yet.</td></tr>
% end
</tbody>
</table>
</div>
