# Any delete or replace that nobody asked for waits for a human, whatever the stack says about
# auto-apply. A destroy run (or an ephemeral run's teardown) asked for its deletes: the run itself
# sets input.provision.destroy, and its permission was checked before it planned.
package provision.rules.destructive_change

import rego.v1

asked_to_destroy if input.provision.destroy == true

findings contains f if {
	not asked_to_destroy
	some rc in input.resource_changes
	data.provision.plan.deleting(rc)
	verb := replace_or_delete(rc)
	f := {
		"id": "destructive_change",
		"level": "soft-mandatory",
		"message": sprintf("%s would be %s", [rc.address, verb]),
		"resource": rc.address,
	}
}

replace_or_delete(rc) := "replaced" if "create" in rc.change.actions

replace_or_delete(rc) := "deleted" if not "create" in rc.change.actions
