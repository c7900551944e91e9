% rebase('layout', title='First extensions')
% include('steps')
<h1>First extensions</h1>
<p>One row per phone. Each gets a strong SIP password, generated here and shown once on the next page. Leave the rows empty to add extensions later.</p>
<form method="post" action="/setup/extensions" novalidate>
<input type="hidden" name="csrf" value="{{csrf}}">
% for i, (number, name) in enumerate(rows):
<fieldset class="row">
% include('field', name='number%d' % i, label='Number', value=number, error=errors.get('number%d' % i), attrs='inputmode="numeric" placeholder="%d"' % (1001 + i))
% include('field', name='name%d' % i, label='Name', value=name, error=errors.get('name%d' % i), attrs='placeholder="Reception"' if i == 0 else '')
</fieldset>
% end
<button type="submit">Add and show the secrets</button>
</form>
<p><a href="/setup/done">Skip</a></p>
