% rebase('layout', title='Log in')
<h1>Log in</h1>
% if errors.get('form'):
<p class="form-error" role="alert" id="login-error">{{errors['form']}}</p>
% end
<form method="post" action="/login" novalidate>
<input type="hidden" name="csrf" value="{{csrf}}">
<input type="hidden" name="next" value="{{form.get('next', '/')}}">
% include('field', name='username', label='User name', value=form.get('username', ''), attrs='autocomplete="username"')
% include('field', name='password', label='Password', type='password', attrs='autocomplete="current-password"')
<button type="submit">Log in</button>
</form>
