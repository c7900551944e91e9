% rebase('layout', title='Set up')
% include('steps')
<h1>Welcome to LineBox</h1>
<p>No admin account exists yet. Choose the password for this box's web admin: it has no default password.</p>
<form method="post" action="/setup/admin" novalidate>
<input type="hidden" name="csrf" value="{{csrf}}">
% include('field', name='username', label='User name', value=form.get('username', ''), error=errors.get('username'), attrs='autocomplete="username"')
% include('field', name='password', label='Password', type='password', error=errors.get('password'), hint='At least 10 characters; not a common password, not the user name.', attrs='autocomplete="new-password"')
% include('field', name='confirm', label='Password again', type='password', error=errors.get('confirm'), attrs='autocomplete="new-password"')
<button type="submit">Create the admin account</button>
</form>
