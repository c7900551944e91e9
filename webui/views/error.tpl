% rebase('layout', title='Error')
<h1>{{status}}</h1>
<p class="form-error" role="alert">{{message}}</p>
<p><a href="/">Back to the dashboard</a></p>
