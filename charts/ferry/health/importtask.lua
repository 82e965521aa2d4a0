-- Argo CD health check for ferry.dev/ImportTask.
-- Reads the task's conditions (Ready, Reconciling, Stalled: kstatus
-- conventions), its phase and spec.suspend. Written for Argo CD's Lua 5.1.
local hs = {}

local function condition(status, type)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

-- A False Reconciling or Stalled only says what the object does instead.
local function describe(c, fallback)
  if c ~= nil and (c.status == "True" or c.type == "Ready") and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

local status = obj.status
local suspended = obj.spec ~= nil and obj.spec.suspend == true
local generation = obj.metadata ~= nil and obj.metadata.generation or nil

if status == nil then
  if suspended then
    hs.status = "Suspended"
    hs.message = "Suspended: waiting for the operator to verify the package and show the plan"
  else
    hs.status = "Progressing"
    hs.message = "Waiting for the operator to pick up the task"
  end
  return hs
end

-- A status written for an older spec says nothing about the current one.
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local ready = condition(status, "Ready")
local stalled = condition(status, "Stalled")
local phase = status.phase or "Pending"

-- A failure that needs a person, even while suspended (a package that fails
-- verification shows here rather than hiding behind Suspended).
if (stalled ~= nil and stalled.status == "True") or phase == "ImportFailed" then
  hs.status = "Degraded"
  local where = ""
  if status.failedPhase ~= nil then
    where = " in " .. status.failedPhase
  end
  hs.message = "Import failed" .. where .. ": " .. describe(stalled, status.message or "see status.conditions")
  return hs
end

if suspended then
  hs.status = "Suspended"
  local plan = ""
  if status.plan ~= nil then
    plan = " (plan: " .. tostring(status.plan.create or 0) .. " to create, " ..
      tostring(status.plan.conflict or 0) .. " conflicts, " ..
      tostring(status.plan.skip or 0) .. " to skip)"
  end
  hs.message = "Suspended in " .. phase .. plan .. "; set spec.suspend to false to start the import"
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  local partial = condition(status, "PartiallyImported")
  if partial ~= nil and partial.status == "True" then
    hs.message = "Completed with conflicts: " .. describe(partial, "some objects were not imported; see the report")
  else
    hs.message = describe(ready, "Import completed")
  end
  return hs
end

hs.status = "Progressing"
local progress = ""
if status.progress ~= nil and status.progress.total ~= nil and status.progress.total > 0 then
  progress = " (" .. tostring(status.progress.done or 0) .. "/" .. tostring(status.progress.total) .. ")"
end
hs.message = phase .. progress .. ": " .. describe(condition(status, "Reconciling"), describe(ready, "import in progress"))
return hs
