"""English patterns of the risk screen, by category (see :mod:`reminders.conversations.risk.rules`)."""

from __future__ import annotations

from reminders.conversations.risk.vocab import (
    ANYONE_POSS,
    ANYSELF,
    DRUGS,
    PILLS,
    QUANTITY,
    SELF,
    TAKE,
    THIRD,
    Pattern,
    _p,
)

PATTERNS_EN: list[Pattern] = [
    # --- suicide risk: wish to be dead, active thoughts, intent and plan, farewells (English)
    *_p(
        "suicide_risk",
        "en",
        r"(?<!run )(?<!running )(?<!ran )(?<!do )(?<!doing )(?:suicide|suicidal|suicidio|suicidarme|suicid"
        r"ing|suicidarse)(?! (?:drills?|doors?|squeeze|sprints?|runs?|lines?|knot|slope))|sewerslide|sewer slide|unalive\w*|un alive\w*|kms|ctb|catch the bus|kys",
        rf"kil+\w* {ANYSELF}(?! (?:laughing|laffing|lol|at work|working|with work|cleaning))|off {SELF}|end {SELF}|end(?:ing)? {ANYSELF}|offing {SELF}",
        r"(?:someone|somebody|please|pls|plz|just|wish (?:someone|something|it|god) would|want "
        r"(?:someone|something) to|need (?:someone|something) to|hope (?:someone|something)) "
        r"(?:to )?(?:kill|kills|end|ends|take|takes) me(?! (?:for|if|when|with|lol|lmao|haha))",
        r"(?:end|ending|ended|finish|finishing) (?:it|it all|things|everything|my life|this|my pain|"
        r"the pain)(?! (?:with|for) (?:you|the clinic|my (?:therapist|doctor)))(?! (?:week|month|"
        r"year|call|conversation|session|appointment|day|chat|thread|on a))",
        r"take (?:my|his|her) (?:own )?life|taking (?:my|his|her) (?:own )?life",
        r"(?:want|wanted|wanting|wish|wished|ready|going|hoping|hope|praying|pray|need|trying) to "
        r"(?:die|be dead|just die|disappear forever|not exist|not be alive|not be here|not wake up|"
        r"never wake up|go to sleep forever|sleep forever)",
        r"(?:wish|hope|hoping|pray|praying) (?:i|he|she) (?:was|were|would|could|will|had|did|do)? ?"
        r"(?:be )?(?:dead|die|never born|not born|gone|not here|not wake|never wake|not exist|"
        r"disappear|just die|not alive)",
        r"(?:want|wanna|wanted|ready|deserve) (?:to )?(?:die|be dead|stop existing|be gone)",
        r"(?:do not|dont|not) (?:want|wanna|wish|care) to (?:live|be alive|exist|be here|wake up|"
        r"go on|keep going|keep living|see tomorrow|be around)",
        r"(?:no|not any|any|zero) (?:reason|point|purpose|will|desire) (?:to|in|for) (?:live|living|"
        r"go on|going on|keep going|being here|being alive|life|exist)",
        r"better off (?:dead|without me|if i (?:was|were) (?:gone|dead)|gone)",
        r"(?:everyone|everybody|they|family|kids|world|you all|yall) (?:would be|will be|is|are|"
        r"be) (?:better|happier) (?:off )?(?:without me|if i (?:was|were|am) (?:gone|dead))",
        r"(?:can not|could not|will not) (?:go on|keep going|do this any ?more|take (?:it|this) "
        r"any ?more|keep living|live like this|handle (?:it|this) any ?more|be here any ?more|"
        r"do it any ?more|hold on)",
        r"(?:not|never) (?:be|being) (?:here|around|alive) (?:much longer|tomorrow|next week|any ?more|"
        r"for (?:your|the|my) (?:appointment|session|next))",
        r"(?:will not|wont|not) (?:be needing|need|make it to) (?:the|my|another|any) "
        r"(?:appointment|session|infusion|treatment|visit)s?(?: (?:after|any ?more|again))",
        r"(?:waiting|wait|want|ready) for (?:it all|everything|it|this|life) to (?:be over|end)|by the "
        r"time you read this|(?:at peace|made peace|peace) with (?:my|the) (?:decision|choice|plan)|"
        r"(?:over|gone|done|out|asleep)(?: \w+)? (?:permanently|for good|forever)|(?:i am|im) "
        r"checking out(?! (?:at|of|the|early|now|\d))|(?:thanks|thank you|thx|ty) for trying (?:with|w)"
        r" me|notice from life|resign\w* from life|quit\w* life|(?:relieved|would not mind|wouldnt "
        r"mind|be ok|be okay|be fine)\b.{0,25}\bif i (?:got|get|was|were|died|crashed|did not|didnt)|"
        r"if i (?:got|get) (?:in|into) a (?:wreck|crash|accident)\b.{0,40}\b(?:relieved|would not "
        r"mind|wouldnt mind|fine|ok|okay)|hope i (?:do not|dont|wont|will not) make it|(?:wish|want)"
        r"\b.{0,20}\b(?:vanish|disappear)\b|look\w* forward to\b.{0,30}\b(?:being dead|dying|death|"
        r"the end)|\bsui (?:thoughts|thots|ideation)|(?:think|thinking|thought)\b.{0,25}\b(?:swerv\w*|"
        r"driving off|crashing my car)|(?:copped|bought|got|scored) (?:some )?(?:fent|fentanyl|"
        r"heroin|dope)|(?:top|top level|top floor|roof) of (?:the|a) (?:ramp|parking deck|parking "
        r"garage|garage|building)|(?:wrote|written) (?:down )?(?:the|my) plan|everything is "
        r"(?:worked out|planned|set up|ready)|(?:as soon as|once|when|after)\b.{0,40}\b(?:i am|im|i "
        r"will|ill) (?:doing|going to do|do) it|(?:after|once|when)\b.{0,40}\b(?:i am|im|ill be|i "
        r"will be) (?:done|gone)\b(?! with)|(?:wrote|left|put)\b.{0,40}\b(?:instructions|passwords|"
        r"deed|insurance papers|life insurance)|(?:leaving|left) my \w+ to my (?:daughter|son|kids|"
        r"children|wife|husband|sister|brother|mom)|(?:lethal|fatal)\b.{0,25}\b(?:together|dose|amount|combo|combination|mix|if i)|(?:how "
        r"much|which|what)\b.{0,40}\b(?:lethal|fatal)|(?:i have|i got|ive got|"
        r"got) (?:\d+|two|three|four|five) (?:boxes|bottles|packs)|(?:\d+|two|three) bottles\b.{0,30}"
        rf"\b(?:{DRUGS})|(?:{DRUGS})\b.{{0,30}}\b(?:\d+|two|three) bottles|(?:hoarding|stockpiling|"
        rf"saving) (?:her|his|my) (?:pills|meds|{DRUGS})|(?:bought|got|have) (?:a|my) \d+ mm|"
        r"drown (?:my|him|her)self|every pill (?:i could find|i had|in the house)|(?:swallowed|took) "
        r"the rest of my|\bglock\b",
        r"(?:there|it) (?:will not|wont) be (?:a|another|any) next (?:appointment|time|session|visit)|"
        r"no next (?:time|appointment)|(?:papers|affairs|things|everything) in order|"
        r"letting (?:you|yall|you all|everyone) go|be good to the next (?:person|patient)|"
        r"(?:hit|run over|hit by|killed) by (?:a|the) (?:bus|car|truck|train)|(?:do not|dont|cant|"
        r"can not) see the point (?:in|of) (?:staying alive|living|being alive|going on|life)|"
        r"(?:no|any) point (?:in|to) (?:staying alive|being alive|living)|(?:not|never) "
        r"(?:driving|coming|going|walking) back|(?:stocked|stocking|loaded) up on (?:pills|meds|"
        r"sleeping pills)|(?:finished|wrote|left) (?:the|my) (?:letters|notes)|(?:how|ways) to "
        r"(?:die|kill (?:him|her|my)self)|(?:talking|talked|hablando) (?:about|de) (?:how|como) "
        r"(?:to )?(?:die|morir)|(?:god|dios) (?:takes|take|to take|would take|me lleve) me|"
        r"praying (?:que )?(?:dios|god) (?:me lleve|takes me|take me)",
        r"(?:wont|will not|not going to|wo not) (?:be|make it) (?:here|around|alive) (?:much longer|"
        r"for (?:much )?longer|for long|to see|by the (?:end|weekend))",
        r"(?:no longer|not) (?:be )?a burden(?! (?:on|to) (?:you|the clinic) (?:with|by|for))",
        r"(?:never|not) (?:wake|waking) up|(?:go|going) to sleep (?:and|n) (?:never|not) wake",
        r"(?:thinking|thought|thoughts|think|thinkin) (?:about|of|abt|bout) (?:dying|death|"
        r"killing|ending|suicide|not being here|not waking|jumping|hanging|shooting)",
        r"(?:i have|ive|i) (?:decided|made up my mind|made my decision|have a plan|got a plan)|"
        r"(?:my|the|a) plan (?:is|for tonight|to)|(?:have|got|made) (?:a|the) plan",
        r"tonight (?:is|s) the night|(?:it|this) (?:ends|is ending|is over) tonight|last night "
        r"on earth|(?:done|finished) (?:with life|with everything|after tonight)",
        r"(?:this is|its|it is) (?:my|the) (?:last|final) (?:text|message|msg|time|goodbye)|"
        r"(?:last|final) (?:text|message|msg) (?:you|from me|ill|i will)",
        r"(?:goodbye|suicide|farewell|last|final) (?:note|letter|letters|video|message)|"
        r"(?:wrote|writing|left|leaving) (?:a |my |the )?(?:note|notes|letter|letters) "
        r"(?:for|to) (?:everyone|whoever|my family|my kids|my wife|my husband|my mom|them all)",
        r"(?:giving|gave|give) (?:away )?(?:my|all my|away my|away all my) (?:dog|dogs|cat|cats|pet|"
        r"pets|stuff|things|belongings|possessions|guitar|car|clothes)",
        r"(?:take|taking|look|looking) (?:care )?(?:care of|after) (?:my|mi) (?:dog|dogs|cat|cats|"
        r"pets|kids|children|plants|fish|bird)",
        r"(?:thank you|thanks|thx|ty) for (?:everything|trying|all you did|all youve done|all you have"
        r" done)\b.{0,60}\b(?:goodbye|bye|farewell|for the last time|wont|will not|no longer|"
        r"last)",
        r"(?:this is|saying|say) goodbye\b(?! (?:for now|till|until|to (?:my old|the|our)))|goodbye (?:forever|for good|everyone|world|cruel)|"
        r"bye (?:forever|for good|everyone|world)|(?:see|meet) you (?:on the other side|in "
        r"(?:another|the next) life)",
        r"(?:sorry|apologize) for everything|forgive me for (?:what|this)",
        r"(?:grave|coffin|skull) (?:bye|goodbye|tonight|soon|me)|(?:bye|goodbye|tonight) (?:grave|"
        r"coffin)",
        r"(?:goodnight|good night|buenas noches) (?:forever|para siempre)|(?:my|mi) (?:goodbye|"
        r"despedida) (?:txt|text|message|mensaje)|(?:my )?(?:last|ultimo|ultima) (?:sunrise|sunset|moon|"
        r"amanecer)|my last night\b(?! (?:shift|of|at|in|here))|finally going to (?:rest|sleep|be free|be at peace)|(?:this|its|it is) "
        r"it\b.{0,20}\b(?:thank|thanks|thx|goodbye|bye)|(?:wasnt|was not|not) (?:her|his|your|"
        r"their) fault|(?:changed|updated) my (?:beneficiary|beneficary|will)|(?:cancel|cancelling)"
        r" (?:my|all my) (?:infusions|appointments|sessions|appts)\b.{0,15}\b(?:permanently|for "
        r"good|no reason|wont need|will not need)|(?:or|and) any (?:week|appointment|session) after"
        r"|(?:letters|notes) are (?:sealed|written|ready)|(?:wont|will not) be back|"
        r"(?:sorry|srry|sry)\b.{0,30}\b(?:had to be|goodbye|bye|couldnt get better|could not get "
        r"better)|(?:love you|love u)\b.{0,30}\b(?:sorry|goodbye|bye|dont be sad|do not be sad|"
        r"tell every)",
        r"(?:pills|gun|knife|rope|razor|bridge|train|needle) (?:bye|goodbye|tonight|later|done|"
        r"forever|me|grave|coffin)",
        r"(?:i am|im|i feel|feeling|am) (?:so )?done with (?:life|living|everything|it all|this "
        r"life|existing)",
        r"(?:life|living|existing) (?:is|isnt|is not) (?:not )?worth (?:it|living)|not worth "
        r"living|(?:my )?life is over|nothing (?:left )?to live for|no way out|feel like dying|"
        r"(?:give|giving|gave) up on (?:life|living|myself)|kill ?my ?self|killmyself",
    ),
    *_p(
        "suicide_risk",
        "en",
        r"(?:tired|sick|over|done) (?:of )?(?:being alive|living|life|existing|being here)|"
        r"(?:hate|hating) (?:being alive|to be alive|living|existing)|(?:disappointed|mad|upset) "
        r"(?:that )?(?:i am|im|to be|i wake up) still (?:alive|here)|still alive",
        r"only (?:way|option|way out|escape|solution) .{0,30}\b(?:die|death|dying|to end it|suicide)",
        r"(?:rather|prefer|better|wish i was|wish i were|ready to) (?:just )?(?:be )?(?:dead|gone|"
        r"in the ground|six feet under)|stop existing|(?:cease|quit) to exist",
        r"(?:done|finished|over) (?:with )?(?:living|life)|(?:check|checking|tap|tapping|bow|bowing)"
        r" out (?:permanently|for good|forever|of life)|want out(?: of (?:life|this world))?\b|"
        r"(?:want|need) (?:it )?(?:all )?to (?:be over|stop|end) (?:permanently|for good|forever)|"
        r"(?:over|gone|done|out|asleep) (?:permanently|for good|forever)",
        r"(?:not|no) (?:planning|going|plan|intend\w*) (?:on|to) (?:be|being|stay|staying) "
        r"(?:around|here|alive)|(?:ready|time|want) to go (?:permanently|for good|home to god)",
        r"(?:picture|picturing|imagine|imagining|planning|plan) (?:my|me at my) (?:own )?funeral|"
        r"(?:can not|cant|do not|dont) (?:see|imagine) (?:a|any|my) future",
        r"(?:die|died|dying|pass|go) in my sleep|(?:hit|hits|kill|kills|end|ends) me (?:on the way|"
        r"in my sleep|already)|(?:bus|truck|car|train) (?:hits|hit|would hit|to hit) me",
        r"(?:wouldnt|would not|nobody would|no one would|who would) (?:care|mind|notice|miss me|be "
        r"sad)\b.{0,20}\bif i (?:died|was dead|were dead|was gone|were gone|disappeared|didnt "
        r"wake|did not wake|killed)",
        r"better (?:off )?(?:without|w o|wo) me|(?:lighter|happier|easier) without me|"
        r"(?:should not|shouldnt|dont deserve to|do not deserve to) (?:be alive|exist|live|be here)",
        r"(?:death|dying|being dead|not existing) (?:sounds|would be|seems|feels|is) (?:so )?"
        r"(?:peaceful|nice|good|like a relief|better|easier|like the answer|like freedom)|"
        r"(?:welcome|relieved|relief)\b.{0,30}\b(?:death|dying|die|ended me|if i died)",
        r"(?:going|gonna|planning|plan|decided|ready|about) to (?:do it|go through with it|use it|"
        r"take them(?: all)?|jump(?! (?:for joy|in the (?:lake|pool|water|shower|ocean|river|car)|"
        r"into the (?:pool|lake|water|ocean|conversation)|on|at|around|to conclusions|rope|back|"
        r"in (?:with|on)|ship))|end it|finally do it)|(?:do|doing) it (?:tonight|tomorrow|today|"
        r"this weekend|this week|after|when|once|on|before|soon|sunday|monday|tuesday|wednesday|"
        r"thursday|friday|saturday|in a few|while|as soon)|(?:go|going|gone) through with it",
        r"(?:picked|chose|choose|chosen|set|found) (?:the|a|my) (?:date|day|time|bridge|spot|place|"
        r"method|way)|(?:mind|decision) is (?:made|final)|(?:made|make|making) peace with (?:it|my|"
        r"dying|death|the plan|leaving)|i know (?:how|exactly how|when|how and when)",
        r"(?:i will|ill|i am going to|i am|im) (?:be )?gone (?:by|before|soon|tomorrow|tonight|"
        r"after)|(?:will not|wont|not going to|not) be around(?! (?:on|this|next|tomorrow|for the|"
        r"for my|that|until|till|in the|at|today|during|after|before|the|when|while|to|monday|"
        r"tuesday|wednesday|thursday|friday|saturday|sunday|mon|tue|tues|wed|thu|thurs|fri|sat|"
        r"sun|that day|then|next|this week|so|but|can|could|will|el|la|los|\d))|(?:take|cross) me off (?:the|your|"
        r"all)|my last (?:day|night|week)(?! (?:at|of|in|on|before|here|off|working|with|to|for))|my last "
        r"(?:appointment|session|infusion) (?:ever|for good|period)|(?:this|it) ends (?:tonight|"
        r"today|now|soon|this week)|(?:it is|its|this is) (?:happening|time)\b(?! (?:for|to) "
        r"(?:my|the|book|schedule))",
        r"(?:wrote|written|writing|finished|left) (?:my|the|a) (?:note|letter|will)\b|"
        r"(?:updated|wrote|finished|signed) my will|affairs (?:are )?in order|"
        r"(?:rehomed|rehoming|found a home for|gave away|giving away|new home for) (?:both |all )?"
        r"(?:my )?(?:dog|dogs|cat|cats|pet|pets|bird|fish|stuff|things|belongings|possessions|"
        r"jewelry|guitar|collection|clothes|ring|books|plants|everything|sneaker|cars?)\b|"
        r"(?:who gets what|everything is sorted|nobody gets stuck|no one has to deal)|"
        r"(?:said|say|saying|telling|told) (?:my )?goodbyes|(?:said|say|saying|telling|told) "
        r"(?:goodbye|bye) to (?:my )?(?:mom|dad|mother|father|family|everyone|everybody|sister|"
        r"brother|kids|children|friends|wife|husband|son|daughter|parents)|(?:before|after) i "
        r"(?:go|am gone|m gone|leave for good)|(?:nice|good) knowing (?:you|u|yall)|"
        r"(?:wont|will not) (?:need|be needing) (?:any more|anymore|them|em|it)\b(?! now)|"
        r"(?:this is|its|it is) (?:my|the) (?:last|final) (?:time|text|message)|(?:last|final) goodbye|"
        r"last thing i (?:needed|need|had|have|will|wanted)|(?:if you|if u) (?:do not|dont) hear (?:back )?"
        r"from me|i wont be (?:back|responding|here)|(?:thank|thanks|ty)\b.{0,50}\b(?:goodbye|bye|"
        r"farewell|so long|peace)|so long and thanks|end of the road",
        r"(?:how much|how many)\b.{0,30}\b(?:would it take|it would take|to die|is lethal|is fatal|"
        r"would kill|to kill|would do it)|(?:googling|googled|researching|researched|looked up|"
        r"looking up|search\w*) (?:how|lethal|the dose|methods|ways|overdose|how high|how many|how "
        r"much)|(?:lethal|fatal|deadly) (?:dose|amount)|(?:should|would|will|gonna|going to) do it\b|"
        r"high enough|enough to (?:die|not wake|not come back|kill|do it|end)",
        r"(?:step|stepping|stepin|walk|walking|jump|jumping) (?:out )?in front of (?:a|the) "
        r"(?:bus|train|truck|car|traffic)|(?:wrote down|know|kno|decided) (?:when and how|how and "
        r"when|which bridge|what time|where and when)|(?:not going to|wont|will not) change my mind|"
        r"(?:hanging up|is hanging|tied)\b.{0,20}\b(?:belt|rope|cord)|(?:belt|rope|cord)\b.{0,20}"
        r"\b(?:hanging|tied|is ready|over the)|anyone(?:s| is)? (?:going to|gonna) stop me|"
        r"(?:saving|hiding|saved|hid|stockpiling|hoarding|sving|sving)\b.{0,25}\b(?:instead of "
        r"taking|pills|meds|lithium|have a lot|worth)|(?:filled|refilled)\b.{0,30}\b(?:early|"
        r"enough|so id have|all at once)|(?:not sure|dont know|do not know) (?:if )?(?:i will|ill|"
        r"id|i would) (?:be|still be) (?:here|around|alive)",
        r"(?:think|thought|thinking|thinkin) (?:about|of|abt) (?:it|ways|how)\b.{0,30}\b(?:die|"
        r"do it|end|kill)|(?:ways|how) (?:to|id|i would|i could) (?:die|do it|kill|end it)",
    ),
    # method and means (English): a means at hand or a place, in a risky sentence
    *_p(
        "suicide_risk",
        "en",
        r"(?:on|at|to|near|by|under|over|off|top of|edge of) (?:the|a|this|that) (?:bridge|"
        r"overpass|ledge|edge|roof|rooftop|cliff|tracks|railroad|train tracks|parking garage|"
        r"top floor)\b.{0,40}\b(?:now|right now|tonight|jump|jumping|standing|sitting|looking "
        r"down|down|edge|bye|goodbye|done|end)",
        r"(?:standing|sitting|parked|waiting|wait|here) (?:on|at|by|near|under|over) (?:the|a|this) "
        r"(?:bridge|overpass|ledge|edge|roof|rooftop|cliff|tracks|railroad|top floor)",
        r"(?:jump|jumping|jumped|leap|step|stepping|walk|walking) (?:off|from|in front of|into|"
        r"onto) (?:a|the|this|that|traffic|oncoming)(?! (?:pool|lake|water|ocean|river|shower|"
        r"conversation|bed|car|truck|game|fray|couch|sofa|diving board|project|new))",
        r"(?:have|hav|got|bought|buy|buying|holding|loaded|load|loading|cleaning|found|get|getting|"
        r"took|grabbed|keeps|keep) (?:out )?(?:a|my|the|his|her|dads|moms|my dads|my moms|my "
        r"husbands|my wifes|a box of|some)? ?(?:\w+ )?(?:gun|pistol|revolver|shotgun|rifle|firearm|"
        r"handgun|9mm|glock|rope|noose|razor|razors|blade|blades|belt|cord|hose|bullets|ammo|"
        r"shells|fent|fentanyl|charcoal)",
        r"(?:gun|pistol|revolver|shotgun|rifle|handgun|rope|belt|cord|noose|razor|blade|knife)\b"
        r".{0,40}\b(?:ready|loaded|on my bed|on the (?:bed|table)|in my (?:lap|hand|pocket|car)|"
        r"right here|tempting|over the|around the|in the tub|with me)",
        r"(?:in|into) the (?:tub|bath|bathtub) with (?:a|my|the) (?:razor|blade|knife)",
        r"(?:bridge|garage|roof|rooftop|cliff|tracks|platform|ledge|overpass|top floor|top level|"
        r"parking deck)\b.{0,40}\b(?:calling|im here|i am here|here now|right now|rn|tonight|"
        r"tomorrow|jump|high enough|should do it|looking over|looking down|over the edge|alone|"
        r"keep thinking|keep walking|keep driving)|(?:i am|im|standing|sitting|parked|walked|drove|"
        r"went) (?:out )?(?:on|at|to|in|up on|onto|out to) (?:the|a|my|this) (?:middle of the |edge "
        r"of the |top of the |top level of the |rail on the )?(?:bridge|roof|rooftop|cliff|tracks|"
        r"platform|ledge|overpass|parking garage|parking deck|top floor|railing|rail)",
        r"(?:engine|car) (?:is )?(?:running|on)\b.{0,30}\b(?:garage|door (?:closed|shut|down))|"
        r"garage door (?:is )?(?:closed|shut|down)|charcoal (?:grill|burner)\b.{0,30}\b(?:bathroom|"
        r"room|closed|shut)",
        rf"(?:have|hav|got|holding|staring at|counting|saved|saving|stashed|hoarded|hoarding|filled|"
        rf"collected|stockpiled|lined up|bought|found|sving)\b.{{0,40}}\b(?:\d\d+|\d+ (?:bottles|"
        rf"boxes|months)|bottles|whole bottle|full bottle|big bottle|a bottle|the bottle|all of "
        rf"them|all my|stash|enough)\b.{{0,30}}(?:{DRUGS}|{PILLS}|\bof (?:them|it|everything))",
        rf"(?:\d\d+|bottles?|whole|stash of|stash)\b.{{0,20}}\b(?:{DRUGS})\b.{{0,40}}\b(?:saved|"
        r"in front of me|thinking|enough|do it|tonight|in the cabinet|staring|in a ziploc|"
        r"nightstand|and a (?:bottle|fifth)|and i)",
        rf"(?:{DRUGS}|{PILLS}) (?:could|would|will|should) (?:do it|be enough|work|kill)|"
        rf"(?:it is|its) the (?:gun|pills|rope|bridge) or the",
        r"(?:gun|pistol|barrel) (?:to|in|against) (?:my|his|her) (?:head|mouth|temple|chest)",
        r"(?:gun|pistol|rifle|shotgun) (?:is )?(?:loaded|in my (?:lap|hand|mouth))|"
        r"(?:loaded|cocked) (?:gun|pistol)",
        r"noose|hang(?:ing)? {ANYSELF}|hanged {ANYSELF}|tie (?:a|the) (?:rope|belt|noose)".replace(
            "{ANYSELF}", ANYSELF
        ),
        r"carbon monoxide|car running in (?:the|a) garage|(?:engine|car) (?:running|on) in (?:the|a)"
        r" (?:closed |shut )?garage|hose (?:to|from) (?:the )?exhaust|exhaust (?:pipe|hose)",
        r"(?:stockpil\w*|hoard\w*|saving|saved|collecting|collected|stashed|stash) (?:up )?"
        rf"(?:my |all my |of |enough )?(?:{PILLS}|{DRUGS})",
        rf"enough (?:{PILLS}|{DRUGS}) to",
        rf"(?:{QUANTITY}) (?:of )?(?:my |his |her |the )?(?:{DRUGS} )?(?:{PILLS}) (?:is|are)? ?"
        r"(?:ready|in front of me|lined up|counted|right here|next to me|on the (?:table|counter))",
        r"(?:drive|driving|crash|crashing|swerve|swerving) (?:my car )?(?:into|off) (?:a|the|"
        r"oncoming|traffic|wall|tree|bridge|pole|cliff|truck)",
        r"(?:slit|slice|slash|cut|open) (?:my|his|her) (?:wrist|wrists|throat|veins)",
    ),
    # --- self-harm (English)
    *_p(
        "self_harm",
        "en",
        rf"(?:cut|cutting|cuts|cutted|burn|burned|burnt|burning|hurt|hurting|harm|harming|hit|"
        rf"hitting|punch|punching|scratch|scratched|scratching|carve|carved|carving|bang|banging|"
        rf"stab|stabbed|stabbing|starve|starving|strangle|strangled|choke|choked) {ANYSELF}",
        r"self ?harm\w*|self ?injur\w*|self ?mutilat\w*|\bsh\b (?:again|relapse|last night|"
        r"yesterday|today)|(?:relapsed|relapse) (?:on|with) (?:sh|self harm|cutting)",
        r"(?:cut|cutting|burned|burning|scratched|carved) (?:my|his|her) (?:arm|arms|wrist|wrists|"
        r"leg|legs|thigh|thighs|skin|stomach|hip|hips|chest|face|hand|hands)",
        r"(?:cut|cutting|cutted|burned|burning|carved) (?:again|deep|deeper|too deep|last night|"
        r"yesterday|today|this morning|tonight)",
        r"(?:razor|blade|knife|lighter|glass) (?:on|to|in|against|into) (?:my|his|her) "
        r"(?:arm|arms|wrist|wrists|leg|legs|thigh|skin)",
        r"(?:will not|wont|can not|cant) stop (?:the )?bleeding|(?:needs|need|needed) stitches",
        r"(?:used to|would|started|stopped|quit|began) (?:to )?(?:cut|cutting|burn|burning|self "
        r"harm\w*|hurt(?:ing)? my ?self|scratch\w*)\b",
        r"(?:urge|want|wanna|need) to (?:cut|burn|sh)(?: (?:my ?self|again|so bad|tonight|right "
        r"now|deep|deeper))?$|need to cut\b(?! (?:back|down|my hair|the|it|costs|class|ties|out|in|"
        r"off|my hours|hours|a check|grass|the grass|my nails))|(?:did|do|done) (?:it|this|that) to "
        r"my ?self|punched (?:the|a) (?:mirror|wall|window)|(?:pic|picture|photo)s? of (?:her|his|my)"
        r" (?:wrists|arms|cuts)|(?:urge|want|wanna|need) to hurt my ?self|(?:razor|razer|blade|box "
        r"cutter|lighter|knife)\b.{0,20}\b(?:in my hand|on my (?:arm|arms|wrist|wrists|skin|leg|legs|"
        r"thigh|thighs|stomach)|to burn|to cut (?:my|myself)|right here)|"
        r"(?:have|got|holding) (?:a|the|my) (?:box cutter|razor|razer|blade|blades)|cut so (?:many|"
        r"much|deep|bad)|scars on scars|(?:hitting|hiting|punching|burning|burn|cutting) my ?self|"
        r"(?:lighter|cigarette|iron) to (?:burn|my)",
        r"(?:fresh|new|deep) (?:cuts|scars|wounds|burns)|cuts (?:on|all over) (?:my|his|her)",
        r"\b(?:shd|sh d|shing|sh ing|sh ed|self harmed)\b|cut (?:\d+|two|three|four|five|a few|"
        r"several|many) times|(?:went|going|back) (?:back )?to cutting|been cutting|"
        r"(?:carved|scraped|scratched|burned|burnt|bit|punched|punching|slammed|slamming|smashing|"
        r"hit|hitting|picked|picking|scratch"
        r"\w*|hitting|banging) .{0,40}\b(?:until|til|till|so hard|on purpose)\b.{0,30}(?:bled|"
        r"bleed\w*|broke|split|purple|swollen|raw|blister\w*|couldnt)|on purpose\b.{0,20}\b(?:until|"
        r"til|till|bled|bleed|hurt|burn|cut)|(?:did|do) the thing (?:with|w) the (?:blade|razor)|"
        r"(?:cuts|burns|scars|wounds)\b.{0,30}\b(?:infected|fresh|new|bleeding|from this|from last)|"
        r"(?:razor|blade|knife|keys)\b.{0,15}\b(?:on|into|across|to) my (?:arm|arms|wrist|wrists|leg|"
        r"legs|thigh|thighs|stomach|skin)|(?:knife|blade|razor|cut) blood|blood again|"
        r"(?:carved|cut) (?:\w+ ){0,3}into my|(?:hand|arm) on the (?:stove|burner|iron)",
    ),
    # --- overdose and ingestion (English)
    *_p(
        "overdose",
        "en",
        r"(?<!tv )(?<!netflix )(?<!sugar )(?<!candy )(?<!caffeine )(?<!cafeine )(?<!carb )(?<!chocolate )(?<!cuteness )"
        r"(?:overdos\w*|over dos\w*)(?! on (?:coffee|caf+eine|sugar|candy|chocolate|netflix|tv|"
        r"cookies|carbs|pizza|sun|work|cuteness|vitamin|halloween|novelas|shows|music|love|"
        r"tacos|cake|pie|food|turkey|holiday|christmas|thanksgiving|pumpkin|anime|kdramas|tiktok|"
        r"reality|true crime|podcasts|books|sleep|naps|exercise|gym|shopping|dessert))|\bod\b|\bod ing\b|\bodeing\b|\boding\b",
        rf"{TAKE} (?:like |about |maybe |around |almost |over |at least |a )?(?:{QUANTITY}) "
        rf"(?:of )?(?:{ANYONE_POSS} )?(?:\w+ )?(?:{DRUGS}|{PILLS}|mg|milligrams)",
        rf"{TAKE} (?:{ANYONE_POSS} )?(?:\w+ )?(?:{DRUGS}|{PILLS})\b.{{0,40}}\b(?:all of (?:them|it|"
        rf"my|his|her)|them all|all at once|at once|whole|entire|"
        rf"too many|\d+|bottle|bunch|handful|extra|double|on purpose|with (?:vodka|alcohol|wine|"
        rf"beer|whiskey|tequila|booze|liquor))",
        rf"(?:{DRUGS}|{PILLS}) (?:with|and|plus|n|mixed with|con|y) (?:a (?:bottle|fifth|handle) of "
        r")?(?:vodka|alcohol|wine|beer|whiskey|tequila|booze|liquor|rum|alcohol|vino|cerveza|"
        r"licor|ron|guaro|mezcal)",
        rf"(?:mixed|mixing|mix) (?:my |his |her )?(?:{DRUGS}|{PILLS})",
        r"(?:drank|drink|drinking|swallowed|took) (?:some |a cup of |a bottle of |the )?(?:bleach|"
        r"antifreeze|poison|rat poison|drain cleaner|lye|cleaning)",
        r"\d+ ?(?:mg|milligrams|pills|tabs|tablets|capsules)\b.{0,40}\b(?:took|taken|swallowed|ago|"
        r"down|in me|on purpose)",
        rf"(?:empty|empties|emptied|finished|finish) (?:the|my|his|her|a|whole) (?:bottle|"
        rf"{PILLS}|{DRUGS})",
        r"(?:too much|too many) (?:of )?(?:my |his |her )?(?:\w+ )?(?:pills|meds|xanax|klonopin|"
        r"insulin|tylenol|oxy|fentanyl|ambien|seroquel)",
        rf"(?:took|taken|swallowed|downed|ate|injected|popped|chugged|drank|used) (?:like |about |"
        rf"maybe |a )?(?:all|all of|the whole|my whole|whole|entire|my entire|the entire|"
        rf"the rest of|rest of|most of|a ton of|tons of|a bunch of|bunch of|fat handful of|"
        rf"handful of|a sheet of|sheet of|\d+)\b.{{0,30}}\b(?:{DRUGS}|{PILLS}|prescription|script|"
        rf"patches|at once|in one go)",
        r"(?:already|allready|just) (?:took|take|taken|swallowed) (?:them|it|everything|what)|"
        r"(?:swallowed|took) (?:everything|what i(?:ve| have)? (?:been )?sav\w*)|"
        r"(?:i|she|he) (?:attempted|tried) (?:last night|this morning|this am|today|yesterday|"
        r"again)|(?:went for it|tried it|tried this)\b.{0,40}\b(?:didnt work|did not work|woke up|"
        r"still here)|(?:jumped|jumpd) from\b|woke up on the (?:bathroom |kitchen )?floor|"
        r"took (?:them|it) all|took (?:them|it)\b.{0,5}\ball of (?:them|it)|all gone\b.{0,10}"
        r"(?:pills)|pills\b.{0,20}\b(?:all gone|took them|took all)|(?:took|taken|ate) the "
        rf"(?:{DRUGS})\b.{{0,20}}\b(?:sorry|bye|goodbye|done)|took a ton of|"
        r"(?:drank|swallowed|drinking) (?:a bottle of |some |a cup of )?(?:rubbing alcohol|"
        r"hand sanitizer|mouthwash|lighter fluid|nail polish remover|peroxide)",
    ),
    # --- medical emergency after an infusion (English)
    *_p(
        "medical_emergency",
        "en",
        r"chest (?:pain|pains|hurts|hurting|is hurting|tight|tightness|pressure|is tight|feels "
        r"tight|crushing|is crushing)|(?:pain|pressure|tightness) in (?:my|his|her) chest|"
        r"(?<!almost gave me a )(?<!nearly gave me a )(?<!almost had a )(?<!nearly had a )"
        r"(?<!give me a )(?<!gave me a )heart attack|cardiac",
        r"(?:can not|could not|cant|cnt|hard to|trouble|struggling to|unable to|difficulty|"
        r"difficult to|barely|not able to) (?:breath|breathe|breathing|catch (?:my|his|her) "
        r"breath|get air)|(?:not|isnt|is not|stopped|stop) breathing|short(?:ness)? of breath|"
        r"gasping|choking|(?:lips|face|skin) (?:are |is |turning |turned |going )?(?:blue|gray|grey)",
        r"(?:will not|wont|can not|cant|could not|not) (?:wake|waking) (?:him|her|them|up)|"
        r"(?:wont|will not|can not|not) wake up|unresponsive|not responding|(?:wont|will not|"
        r"does not|doesnt|is not|isnt) respond\w*|(?:not|wont|will not) (?:answer|open) (?:his|her)"
        r" eyes|unconscious|out cold",
        r"seiz\w*|convuls\w*|(?:shaking|jerking|twitching) (?:uncontrollab\w*|all over|and "
        r"(?:wont|will not|can not))|fit (?:on|in) the floor",
        r"passed out|pass out|passing out|faint(?! (?:smell|sound|line|hope|memory|taste|light|"
        r"trace|idea|scent))|fainted|fainting|blacked out|black out|"
        r"collapsed|collapse|keeled over|hit (?:his|her|my) head",
        r"throat (?:is )?(?:closing|swelling|swollen|tight|closing up)|(?:swollen|swelling) "
        r"(?:lips|tongue|face|throat)|(?:lips|tongue|face) (?:are |is )?(?:swelling|swollen)|"
        r"hives (?:all over|everywhere|on (?:my|his|her) (?:whole|entire))|anaphyla\w*|epi ?pen|"
        r"allergic reaction",
        r"(?:heart|pulse) (?:is )?(?:racing|pounding|beating) (?:so )?(?:fast|hard|out of|like "
        r"crazy)?.{0,30}(?:pain|chest|dizzy|faint|can not|cant|scared|hurts)|"
        r"(?:blood pressure|bp) (?:is )?(?:very |really |super |so )?(?:high|through the roof|"
        r"\d{3})|\b(?:1[89]\d|2\d\d)/\d{2,3}\b",
        r"stroke|face (?:is )?droop\w*|droop\w* face|slurr\w*|(?:can not|cant) (?:move|feel) "
        r"(?:my|his|her) (?:arm|leg|face|side)|numb on one side",
        r"(?:vomiting|throwing up|coughing up|puking) blood|(?:bleeding|blood) (?:wont|will not) "
        r"stop|(?:severe|extreme|worst) (?:headache|pain|bleeding)|(?:very|really|so|extremely) "
        r"confused|(?:does not|doesnt|dont|do not) know where (?:he|she|i) (?:is|am)|(?:hallucinat\w*).{0,20}"
        r"(?:hours|still|wont|scared)",
        r"(?:face|side|arm|leg)\b.{0,25}\b(?:droopy|drooping|dead weight|cant lift|can not lift|"
        r"wont move|will not move)|(?:left|right|one) side\b.{0,25}\b(?:numb|weak|droop\w*|went)|"
        r"(?:words|speech)\b.{0,20}"
        r"\b(?:coming out wrong|slurred|garbled|wrong)|(?:can not|cant|could not) (?:find|get) (?:my"
        r" )?words|(?:lost|losing) (?:vision|sight|my vision)|sudden (?:weakness|numbness|blindness)"
        r"|(?:bp|blood pressure|cuff|pressure)\b.{0,40}\b(?:1[89]\d|2\d\d)\b|heart\b.{0,25}\b(?:1[5-9]\d|"
        r"2\d\d)\b|(?:blacking|blacked) out|(?:losing|lost) consciousness|hives|eyes (?:are )?"
        r"(?:swelling|swollen)|chest (?:is )?(?:on fire|burning|crushing|caving)|(?:elephant|"
        r"weight|elefante)\b.{0,25}\b(?:chest|pecho)|sudando frio|cold sweat|(?:jaw|mandibula)\b"
        r".{0,20}\b(?:hurts|pain|duele)|(?:duele|hurts)\b.{0,20}\b(?:jaw|mandibula)|barely stand|"
        r"(?:passed|pass) out (?:twice|again|several)|arm (?:is )?(?:tingling|numb)|gushing|(?:still|wont stop|will not "
        r"stop) bleeding|vomiting (?:nonstop|non stop|and|for hours|blood)|breathing (?:feels |is )?"
        r"(?:slow|shallow|weird|funny|wrong)|(?:do not|dont) know (?:whats|what is) real|seeing "
        r"spots",
        r"(?:call|calling|called) (?:911|an ambulance|ems|the ambulance)|ambulance|(?:911|er|"
        r"emergency room|hospital) (?:now|right now)|take (?:him|her|me|them) to the (?:er|"
        r"emergency room|hospital)",
    ),
    # --- a third party reporting the patient in danger (English)
    *_p(
        "third_party_marker",
        "en",
        rf"(?:this is|its|it is|i am|im|am) (?:his|her|their|the patients|[a-z]+s) {THIRD}",
        rf"(?:his|her|their) {THIRD} here|{THIRD} of (?:the patient|your patient)|^(?:roomie|"
        rf"{THIRD}) here|on behalf of (?:my|his|her)|(?:he|she) is (?:your|a) patient|your patient|"
        rf"(?:my|his|her) {THIRD} \w* ?(?:is|was) (?:a patient|your patient)",
    ),
    *_p(
        "third_party",
        "en",
        r"(?:he|she|they) (?!(?:is|are) dead (?:asleep|tired|to me|serious|set))(?:is|are|has "
        r"been|keeps|kept|said|says|told me|texted|wants|wanted|"
        r"tried|took|just|locked|will not|wont|can not|cant|is not|isnt)\b.{0,40}\b(?:die|dying|dead|"
        r"kill|suicid\w*|pills|gun|overdos\w*|breath\w*|wake|respond\w*|unconscious|passed out|"
        r"bleeding|cut|cutting|seiz\w*|collapsed|ambulance|911|hospital|goodbye|locked|note)",
    ),
    # --- risk of harm to others (a threat with a target, a means or a time)
    *_p(
        "harm_to_others",
        "en",
        r"(?:going to|gonna|about to|want to|wanna|will|ill|ima|i am going to|plan to|thoughts of|"
        r"thinking about|urge to) (?:kill|hurt|shoot|stab|poison|run over|end|strangle|burn) "
        r"(?:my (?:kids|son|daughter|mom|mother|dad|father|husband|wife|ex|boss|neighbor|roommate|"
        r"coworker|partner|baby)|him|her|them|someone|somebody|people|everyone|other people|his|"
        r"the people|my ex s)\b(?! (?:for|if|when|lol|lmao|haha))",
        r"(?:bringing|bring|take|taking) (?:my|a) (?:gun|knife|rifle|pistol) to (?:work|school|"
        r"church|his|her|their)|(?:going|goin) over (?:there|to his|to her)\b.{0,20}\b(?:gun|"
        r"knife)|burn (?:his|her|their) house|(?:voices|voice)\b.{0,30}\b(?:hurt|kill)",
    ),
    # --- urgent review: strong distress without a stated risk
    *_p(
        "distress",
        "en",
        r"hopeless|no hope|worthless|(?:can not|cant) stop crying|falling apart|(?:so|really|very) "
        r"(?:depressed|alone|lonely|empty|numb)|(?:worst|darkest) (?:day|week|place|time)|"
        r"(?:in a|in such a) (?:dark|bad) place|(?:giving|given) up|(?:what is|whats) the point|"
        r"(?:nobody|no one) (?:cares|would care|would notice|would miss)|(?:i hate|hate) my (?:life|"
        r"self)|(?:i am|im) (?:a )?(?:failure|mess)|(?:losing|lost) (?:it|my mind)|"
        r"(?:panic|anxiety) attack|breaking down|spiral\w*|numb|(?:i am|im|being|feel like) a "
        r"burden|burden (?:to|on) (?:everyone|my|them)",
    ),
]
