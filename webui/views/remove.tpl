% rebase('layout', title='Remove extension')
<h1>Remove extension {{number}}?</h1>
<p>Phones registered as {{number}} are cut off at once and calls to it fail. Its SIP password is forgotten.</p>
<form method="post" action="/extensions/{{number}}/remove" class="inline" id="confirm-remove">
<input type="hidden" name="csrf" value="{{csrf}}">
<input type="hidden" name="confirm" value="yes">
<button type="submit" class="danger">Remove {{number}}</button>
</form>
<a href="/extensions" role="button" class="secondary">Keep it</a>
